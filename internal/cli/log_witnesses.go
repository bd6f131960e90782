package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// requireCosignatures checks that at least min of the witnesses named by
// vkeys (C2SP cosignature/v1 verifier keys, or files holding them) validly
// cosigned the checkpoint signed (already verified against logKey). It
// returns the names of those that did. Each witness is checked on its
// own, so one bad cosignature line cannot hide the good ones.
func requireCosignatures(signed []byte, logKey note.Verifier, vkeys []string, min int) ([]string, error) {
	if min < 0 {
		return nil, fmt.Errorf("--min-witnesses %d must be 0 or more", min)
	}
	if len(vkeys) == 0 {
		if min > 0 {
			return nil, fmt.Errorf("--min-witnesses %d needs the witnesses' keys: name each with --witness VKEY", min)
		}
		return nil, nil
	}
	// A witness is its public key, not its name: a cosignature/v1
	// signature does not cover the name, so one genuine cosignature could
	// be relabelled under every name given to the same key.
	byKey := map[string]string{} // public key → first name given to it
	var ws []note.Verifier
	var shared []string
	for _, k := range vkeys {
		vk := readKeyOrFile(k)
		v, err := tlog.NewVerifier(vk)
		if err != nil {
			return nil, fmt.Errorf("--witness %q is not a witness verifier key: %v", k, err)
		}
		pub := witnessPublicKey(vk)
		if first, dup := byKey[pub]; dup {
			if first != v.Name() {
				shared = append(shared, fmt.Sprintf("%s has the same key as %s", v.Name(), first))
			}
			continue
		}
		byKey[pub] = v.Name()
		ws = append(ws, v)
	}
	if min > len(ws) {
		why := ""
		if len(shared) > 0 {
			why = " (" + strings.Join(shared, "; ") + ", and one key counts once)"
		}
		return nil, fmt.Errorf("--min-witnesses %d is more than the %d distinct witnesses named with --witness%s", min, len(ws), why)
	}
	var ok, missing []string
	for _, w := range ws {
		_, n, err := tlog.OpenCheckpoint(signed, logKey, w)
		cosigned := false
		if err == nil {
			for _, s := range n.Sigs {
				cosigned = cosigned || (s.Name == w.Name() && s.Hash == w.KeyHash())
			}
		}
		if cosigned {
			ok = append(ok, w.Name())
		} else {
			missing = append(missing, w.Name())
		}
	}
	if len(ok) < min {
		got := "none"
		if len(ok) > 0 {
			got = strings.Join(ok, ", ")
		}
		return ok, fmt.Errorf("only %d of the %d named witnesses cosigned the checkpoint (%s), fewer than the %d required; no valid cosignature from %s",
			len(ok), len(ws), got, min, strings.Join(missing, ", "))
	}
	return ok, nil
}

// bundleCosignatures applies --witness/--min-witnesses to the checkpoint
// inside an export bundle, offline; verifyBundle then checks the rest.
func (e *env) bundleCosignatures(file, key string, vkeys []string, min int) error {
	vkey, err := readKeyArg(key)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	var b tlog.Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return e.verifyFailed(logVerifyOutput{}, fmt.Errorf("%s is not an export bundle: %v", file, err))
	}
	v, err := tlog.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("--key %q is not a log verifier key: %v", vkey, err)
	}
	if _, _, err := tlog.OpenCheckpoint([]byte(b.Checkpoint), v); err != nil {
		return e.verifyFailed(logVerifyOutput{}, err)
	}
	if _, err := requireCosignatures([]byte(b.Checkpoint), v, vkeys, min); err != nil {
		return e.verifyFailed(logVerifyOutput{}, err)
	}
	return nil
}

// witnessPublicKey returns the raw public key of a verifier key
// ("name+hash+base64(type || key)") that tlog.NewVerifier accepted,
// without the type byte, so that one Ed25519 key is one witness whatever
// name or key type it is given.
func witnessPublicKey(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return vkey
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < 2 {
		return vkey
	}
	return string(raw[1:])
}
