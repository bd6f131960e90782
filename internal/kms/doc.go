// Package kms owns Interlock's keys and secrets: the root key (from a 0600
// file, a passphrase or an environment variable), the [Sealer] that other
// packages use for sensitive columns, named and versioned key-encryption
// keys, envelope encryption with per-message data keys, rotation and
// rewrap, crypto-shredding, the versioned secrets store, and the small
// dual-control mechanism that guards destructive key and secret changes.
//
// Who may import it: internal/app wires it; internal/api calls [Service];
// identity, ops and other domain packages take a [Sealer] through their own
// one-method-pair interface and never import kms directly unless they need
// a constructor. kms imports internal/audit and internal/usererr only.
//
// # Cryptography
//
// Every AEAD in this package is AES-256-GCM from the Go standard library,
// built with [cipher.NewGCMWithRandomNonce], so the 96-bit nonce is drawn
// inside Go's cryptographic module. Keys are derived with HKDF-SHA-256
// (crypto/hkdf) and context hashes are HMAC-SHA-256. No primitive is
// written here.
//
// # FIPS 140-3 mode
//
// Started with GODEBUG=fips140=on (or built with GOFIPS140), every
// primitive above runs inside the Go Cryptographic Module, and
// [FIPSEnabled] reports true. TestFIPSRoundTrip re-runs the seal, envelope
// and rewrap round trips in a child process with that setting. The one
// exception is [RootKeyFromPassphrase]: Argon2id (golang.org/x/crypto) is
// not a FIPS-approved KDF, so FIPS deployments should load the root key
// from the file or from the environment.
//
// # Random-nonce limit
//
// AES-GCM with random 96-bit nonces MUST NOT encrypt more than 2^32
// messages under one key. Named keys count encryptions per version and
// rotate before [DefaultMaxEncryptions]; the column [Sealer] derives a
// fresh HKDF subkey per purpose and is used for a few rows per person or
// host, far below the limit.
//
// # Audit entries (all Version 1)
//
// Every state change and every data-plane call commits an entry in the
// same transaction. Data never holds plaintext or an encryption context;
// contexts appear only as "context_hmac" (HMAC-SHA-256 under a key derived
// from the root key), and secret-read reasons go to Personal.
//
//	kms.root_key.initialized   system; first start with this database
//	kms.key.created            key, version, rotation_period_s, max_encryptions
//	kms.key.rotated            key, from_version, version, reason (manual|encryption_limit|schedule)
//	kms.key.enabled            key
//	kms.key.disabled           key, request, requested_by, approved_by
//	kms.key.version_destroyed  key, version, request, requested_by, approved_by (actor system after the delay)
//	kms.key.min_version_set    key, from, to (+ request fields when lowered)
//	kms.encrypt / kms.datakey  key, version, bytes, context_hmac
//	kms.decrypt                key, version, context_hmac
//	kms.encrypt_batch          key, version, items, bytes, context_hmacs (one per item, in order)
//	kms.decrypt_batch          key, items, versions, context_hmacs (one each per item, in order)
//	kms.rewrap                 key, from_version, version, context_hmac
//	kms.request.created        request, action, hash
//	kms.request.approved       request, action, hash, requested_by
//	kms.request.cancelled / .expired / .failed   request, action
//	secret.put                 path, version, key, key_version, critical
//	secret.read                path, secret_version, key, version, context_hmac; Personal: reason
//	secret.deleted             path, versions
package kms
