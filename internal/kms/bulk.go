package kms

import (
	"context"
	"errors"
	"fmt"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Batches exist because one call over HTTPS costs the server far more than
// the encryption it asks for (TLS records, HTTP, a policy decision and a
// durable audit commit: ~100 µs against ~3 µs of AES-GCM), so a caller
// that encrypts many small values at once (the rows of a table) sends them
// together, as Vault's transit batch_input does. A batch is one call: one
// policy decision on the key, one audit entry that lists every item's
// context HMAC, and all-or-nothing: an invalid item refuses the whole
// batch, naming the item, and nothing is encrypted, decrypted or counted.

// MaxBatchItems is the most items one batch call may carry. The call's
// audit entry lists every item's context HMAC (79 bytes each), and an
// entry must stay under audit.MaxLeafSize (64 KiB); 500 also keeps a batch
// of 1 KiB plaintexts (base64) under the API's 1 MiB body limit.
const MaxBatchItems = 500

// EncryptItem is one plaintext of EncryptBatch with its encryption context.
type EncryptItem struct {
	Plaintext []byte
	Context   Context
}

// DecryptItem is one ciphertext of DecryptBatch with its encryption context.
type DecryptItem struct {
	Ciphertext string
	Context    Context
}

// DecryptedItem is one plaintext DecryptBatch returns.
type DecryptedItem struct {
	Plaintext Plaintext
	Version   int
}

// EncryptBatch encrypts every item under key name's current version. The
// audit entry (kind kms.encrypt_batch) records the item count, total bytes
// and each item's context HMAC, in item order.
func (s *Service) EncryptBatch(ctx context.Context, c Caller, name string, items []EncryptItem) ([]EncryptResult, error) {
	if err := checkBatchSize(len(items)); err != nil {
		return nil, err
	}
	for i, it := range items {
		if err := s.checkEncrypt(c, name, it.Plaintext, it.Context); err != nil {
			return nil, itemErr(i, err)
		}
	}
	canons := make([][]byte, len(items))
	hmacs := make([]string, len(items))
	total := 0
	for i, it := range items {
		canons[i], hmacs[i] = it.Context.canonical(), s.ctxHash.hash(it.Context)
		total += len(it.Plaintext)
	}
	for attempt := 0; ; attempt++ {
		kek, version, err := s.reserveN(ctx, name, int64(len(items)))
		if err != nil {
			return nil, err
		}
		out := make([]EncryptResult, len(items))
		for i, it := range items {
			ct, err := seal(kek, name, version, canons[i], it.Plaintext)
			if err != nil {
				return nil, err
			}
			out[i] = EncryptResult{Ciphertext: ct.String(), Key: name, Version: version}
		}
		err = s.batch.do(ctx, &job{
			entry: audit.Entry{Kind: "kms.encrypt_batch", Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: s.now(),
				Data: map[string]any{"key": name, "version": version, "items": len(items), "bytes": total, "context_hmacs": hmacs}},
			usages: []usage{{key: name, version: version, enc: int64(len(items))}},
		})
		if errors.Is(err, errStale) && attempt == 0 {
			s.forget(name)
			continue
		}
		if err != nil {
			return nil, s.staleErr(err, name)
		}
		return out, nil
	}
}

// DecryptBatch decrypts every item; each ciphertext must have been made
// with key name (any version still allowed to decrypt) and its item's
// context. The audit entry (kind kms.decrypt_batch) records the item count
// and each item's version and context HMAC, in item order.
func (s *Service) DecryptBatch(ctx context.Context, c Caller, name string, items []DecryptItem) ([]DecryptedItem, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := checkBatchSize(len(items)); err != nil {
		return nil, err
	}
	cts := make([]ciphertext, len(items))
	canons := make([][]byte, len(items))
	hmacs := make([]string, len(items))
	versions := make([]int, len(items))
	for i, it := range items {
		if err := it.Context.validate(); err != nil {
			return nil, itemErr(i, err)
		}
		ct, err := parseCiphertext(it.Ciphertext)
		if err != nil {
			return nil, itemErr(i, err)
		}
		if ct.Key != name {
			return nil, itemErr(i, usererr.New(usererr.Invalid, "key_mismatch", "the ciphertext was made with key %q, not %q", ct.Key, clip(name)))
		}
		cts[i], canons[i], hmacs[i], versions[i] = ct, it.Context.canonical(), s.ctxHash.hash(it.Context), ct.Version
	}
	for attempt := 0; ; attempt++ {
		out, usages, err := s.openAll(ctx, name, cts, canons)
		if err != nil {
			return nil, err
		}
		err = s.batch.do(ctx, &job{
			entry: audit.Entry{Kind: "kms.decrypt_batch", Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: s.now(),
				Data: map[string]any{"key": name, "items": len(items), "versions": versions, "context_hmacs": hmacs}},
			usages: usages,
		})
		if err != nil {
			for _, d := range out {
				clear(d.Plaintext.b)
			}
		}
		if errors.Is(err, errStale) && attempt == 0 {
			s.forget(name)
			continue
		}
		if err != nil {
			return nil, s.staleErr(err, name)
		}
		return out, nil
	}
}

// openAll decrypts every ciphertext of a batch and sums the decryptions per
// version. On any failure it erases what it opened.
func (s *Service) openAll(ctx context.Context, name string, cts []ciphertext, canons [][]byte) ([]DecryptedItem, []usage, error) {
	out := make([]DecryptedItem, 0, len(cts))
	fail := func(i int, err error) ([]DecryptedItem, []usage, error) {
		for _, d := range out {
			clear(d.Plaintext.b)
		}
		return nil, nil, itemErr(i, err)
	}
	var usages []usage
	for i, ct := range cts {
		kek, err := s.decryptable(ctx, name, ct.Version)
		if err != nil {
			return fail(i, err)
		}
		pt, ok := open(kek, ct, canons[i])
		if !ok {
			return fail(i, errDecryptFailed)
		}
		out = append(out, DecryptedItem{Plaintext: Plaintext{b: pt}, Version: ct.Version})
		counted := false
		for j := range usages {
			if usages[j].version == ct.Version {
				usages[j].dec++
				counted = true
			}
		}
		if !counted {
			usages = append(usages, usage{key: name, version: ct.Version, dec: 1})
		}
	}
	return out, usages, nil
}

func checkBatchSize(n int) error {
	if n == 0 {
		return usererr.New(usererr.Invalid, "empty_batch", "the batch has no items")
	}
	if n > MaxBatchItems {
		return usererr.New(usererr.TooLarge, "batch_too_large", "the batch has %d items; at most %d are accepted", n, MaxBatchItems)
	}
	return nil
}

// itemErr names the batch item an error is about, keeping its kind and code.
func itemErr(i int, err error) error {
	if ue, ok := usererr.As(err); ok {
		return &usererr.Error{Kind: ue.Kind, Code: ue.Code, Msg: fmt.Sprintf("items[%d]: %s", i, ue.Msg), Details: ue.Details, Err: ue.Err}
	}
	return fmt.Errorf("items[%d]: %w", i, err)
}
