package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestHostsDigestFormat pins what HostsDigest hashes, so that anyone can
// check a host list against an op.requested entry without this code: the
// SHA-256 of the waves as compact JSON, numbers and host IDs in order.
func TestHostsDigestFormat(t *testing.T) {
	sum := sha256.Sum256([]byte(`[{"number":1,"hosts":["host_a"]},{"number":2,"hosts":["host_b","host_c"]}]`))
	want := hex.EncodeToString(sum[:])
	got := HostsDigest([]Wave{{Number: 1, Hosts: []string{"host_a"}}, {Number: 2, Hosts: []string{"host_b", "host_c"}}})
	if got != want {
		t.Errorf("HostsDigest = %s, want %s", got, want)
	}
	if swapped := HostsDigest([]Wave{{Number: 1, Hosts: []string{"host_a"}}, {Number: 2, Hosts: []string{"host_c", "host_b"}}}); swapped == want {
		t.Error("the digest does not depend on the hosts' order")
	}
}
