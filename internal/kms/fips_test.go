package kms

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFIPSRoundTrip re-runs this test binary with GODEBUG=fips140=on and
// checks, inside the child, that FIPS 140-3 mode is really on and that the
// sealing and envelope round trips work there. It costs one process start.
func TestFIPSRoundTrip(t *testing.T) {
	if os.Getenv("KMS_FIPS_CHILD") == "1" {
		if !FIPSEnabled() {
			t.Fatal("child runs without FIPS 140-3 mode although GODEBUG=fips140=on")
		}
		fipsRoundTrips(t)
		return
	}
	if testing.Short() {
		t.Skip("skipping the FIPS child process in -short mode")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSRoundTrip$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "KMS_FIPS_CHILD=1", "GODEBUG=fips140=on")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSRoundTrip") {
		t.Fatalf("FIPS child failed: %v\n%s", err, out)
	}
}

func fipsRoundTrips(t *testing.T) {
	root, err := NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(root)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("fips"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(sealed, []byte("aad")); err != nil || !bytes.Equal(got, []byte("fips")) {
		t.Fatalf("sealer round trip in FIPS mode = %q, %v", got, err)
	}
	for _, f := range fipsExtra {
		f(t)
	}
}

// fipsExtra holds further round trips (envelope, rewrap) that the FIPS
// child runs; other test files append to it.
var fipsExtra []func(t *testing.T)
