package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// KMSRoutes serves keys, envelope encryption, secrets and their
// dual-control requests (see internal/api/wire/kms.go for the table).
// Every per-key route is one Cedar decision on Key::"<name>", every
// secret route one on Secret::"<path>"; the service audits every call.
func KMSRoutes(svc *kms.Service) []Route {
	h := kmsHandlers{svc: svc}
	key := func(r *http.Request) Resource { return Resource{Type: "Key", ID: r.PathValue("name")} }
	secret := func(r *http.Request) Resource { return Resource{Type: "Secret", ID: r.PathValue("path")} }
	secretPrefix := func(r *http.Request) Resource { return Resource{Type: "Secret", ID: r.URL.Query().Get("prefix")} }
	return []Route{
		{Pattern: "POST /v1/kms/keys", Action: "kms.key.create", Handle: h.createKey},
		{Pattern: "GET /v1/kms/keys", Action: "kms.key.list", Handle: h.listKeys},
		{Pattern: "GET /v1/kms/keys/{name}", Action: "kms.key.get", Resource: key, Handle: h.getKey},
		{Pattern: "POST /v1/kms/keys/{name}/rotate", Action: "kms.key.rotate", Resource: key, Handle: h.rotateKey},
		{Pattern: "POST /v1/kms/keys/{name}/disable", Action: "kms.key.disable", Resource: key, Handle: h.disableKey},
		{Pattern: "POST /v1/kms/keys/{name}/enable", Action: "kms.key.disable", Resource: key, Handle: h.enableKey},
		{Pattern: "POST /v1/kms/keys/{name}/versions/{version}/destroy", Action: "kms.key.destroy", Resource: key, Handle: h.destroyVersion},
		{Pattern: "PUT /v1/kms/keys/{name}/min-decryption-version", Action: "kms.key.set_min_version", Resource: key, Handle: h.setMinVersion},
		{Pattern: "POST /v1/kms/keys/{name}/encrypt", Action: "kms.encrypt", Resource: key, Handle: h.encrypt},
		{Pattern: "POST /v1/kms/keys/{name}/decrypt", Action: "kms.decrypt", Resource: key, Handle: h.decrypt},
		{Pattern: "POST /v1/kms/keys/{name}/encrypt-batch", Action: "kms.encrypt", Resource: key, Handle: h.encryptBatch},
		{Pattern: "POST /v1/kms/keys/{name}/decrypt-batch", Action: "kms.decrypt", Resource: key, Handle: h.decryptBatch},
		{Pattern: "POST /v1/kms/keys/{name}/datakey", Action: "kms.datakey", Resource: key, Handle: h.dataKey},
		{Pattern: "POST /v1/kms/keys/{name}/rewrap", Action: "kms.rewrap", Resource: key, Handle: h.rewrap},
		{Pattern: "GET /v1/kms/requests", Action: "kms.key.list", Handle: h.listRequests},
		{Pattern: "GET /v1/kms/requests/{id}", Action: "kms.key.list", Handle: h.getRequest},
		{Pattern: "POST /v1/kms/requests/{id}/approve", Action: "kms.key.list", Handle: h.approve},
		{Pattern: "POST /v1/kms/requests/{id}/cancel", Action: "kms.key.list", Handle: h.cancel},
		{Pattern: "PUT /v1/secrets/value/{path...}", Action: "secret.put", Resource: secret, Handle: h.putSecret},
		{Pattern: "POST /v1/secrets/read/{path...}", Action: "secret.get", Resource: secret, Handle: h.readSecret},
		{Pattern: "GET /v1/secrets", Action: "secret.list", Resource: secretPrefix, Handle: h.listSecrets},
		{Pattern: "GET /v1/secrets/versions/{path...}", Action: "secret.versions", Resource: secret, Handle: h.secretVersions},
		{Pattern: "DELETE /v1/secrets/value/{path...}", Action: "secret.delete", Resource: secret, Handle: h.deleteSecret},
	}
}

type kmsHandlers struct{ svc *kms.Service }

func kmsCaller(c *Call) kms.Caller { return kms.Caller{Kind: c.Principal.Kind, ID: c.Principal.ID} }

func decodeB64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, usererr.New(usererr.Invalid, "invalid_base64", "%q must be standard base64 (RFC 4648 with padding): %v", field, err)
	}
	return b, nil
}

func wireKey(k kms.KeyInfo) wire.KMSKey {
	out := wire.KMSKey{Name: k.Name, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, CurrentVersion: k.CurrentVersion,
		MinDecryptionVersion: k.MinDecryptionVersion, Disabled: k.Disabled, RotationPeriodS: int64(k.RotationPeriod / time.Second),
		MaxEncryptions: k.MaxEncryptions, NextRotationAt: k.NextRotationAt, Versions: []wire.KMSKeyVersion{}}
	for _, v := range k.Versions {
		out.Versions = append(out.Versions, wire.KMSKeyVersion{Version: v.Version, CreatedAt: v.CreatedAt, Encryptions: v.Encryptions,
			Decryptions: v.Decryptions, Destroyed: v.Destroyed, DestroyedAt: v.DestroyedAt})
	}
	return out
}

func wireRequest(r kms.Request) *wire.KMSRequest {
	return &wire.KMSRequest{ID: r.ID, Action: r.Action, Subject: r.Subject, Content: r.Content, Hash: r.Hash, RequestedBy: r.RequestedBy,
		RequestedAt: r.RequestedAt, ExpiresAt: r.ExpiresAt, State: r.State, ApprovedBy: r.ApprovedBy, ApprovedAt: r.ApprovedAt,
		ExecuteAfter: r.ExecuteAfter, FinishedAt: r.FinishedAt, Note: r.Note}
}

func wireSecret(s kms.SecretInfo) *wire.Secret {
	return &wire.Secret{Path: s.Path, Key: s.Key, Critical: s.Critical, CurrentVersion: s.CurrentVersion,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Deleted: s.Deleted}
}

func (h kmsHandlers) createKey(c *Call) error {
	var in wire.KMSKeyCreateRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	opt := kms.KeyOptions{MaxEncryptions: in.MaxEncryptions}
	switch {
	case in.RotationPeriodS < 0:
		opt.RotationPeriod = -1
	case in.RotationPeriodS > 0:
		if in.RotationPeriodS > 100*365*86400 {
			return usererr.New(usererr.Invalid, "invalid_rotation_period", "the rotation period must be at most 100 years")
		}
		opt.RotationPeriod = time.Duration(in.RotationPeriodS) * time.Second
	}
	if err := c.Authorize("kms.key.create", Resource{Type: "Key", ID: in.Name}, nil); err != nil {
		return err
	}
	k, err := h.svc.CreateKey(c.Context(), kmsCaller(c), in.Name, opt)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wireKey(k))
}

func (h kmsHandlers) listKeys(c *Call) error {
	ks, err := h.svc.ListKeys(c.Context())
	if err != nil {
		return err
	}
	out := wire.KMSKeyList{Keys: []wire.KMSKey{}}
	for _, k := range ks {
		out.Keys = append(out.Keys, wireKey(k))
	}
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) getKey(c *Call) error {
	k, err := h.svc.GetKey(c.Context(), c.R.PathValue("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireKey(k))
}

func (h kmsHandlers) rotateKey(c *Call) error {
	k, err := h.svc.RotateKey(c.Context(), kmsCaller(c), c.R.PathValue("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireKey(k))
}

func (h kmsHandlers) disableKey(c *Call) error {
	r, err := h.svc.DisableKey(c.Context(), kmsCaller(c), c.R.PathValue("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, wireRequest(r))
}

func (h kmsHandlers) enableKey(c *Call) error {
	k, err := h.svc.EnableKey(c.Context(), kmsCaller(c), c.R.PathValue("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireKey(k))
}

func (h kmsHandlers) destroyVersion(c *Call) error {
	v, err := strconv.Atoi(c.R.PathValue("version"))
	if err != nil || v < 1 {
		return usererr.New(usererr.Invalid, "invalid_key_version", "the key version must be a positive number")
	}
	r, err := h.svc.DestroyKeyVersion(c.Context(), kmsCaller(c), c.R.PathValue("name"), v)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, wireRequest(r))
}

func (h kmsHandlers) setMinVersion(c *Call) error {
	var in wire.KMSSetMinVersionRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	name := c.R.PathValue("name")
	r, err := h.svc.SetMinDecryptionVersion(c.Context(), kmsCaller(c), name, in.Version)
	if err != nil {
		return err
	}
	if r != nil {
		return c.JSON(http.StatusAccepted, wire.KMSChange{Pending: wireRequest(*r)})
	}
	k, err := h.svc.GetKey(c.Context(), name)
	if err != nil {
		return err
	}
	wk := wireKey(k)
	return c.JSON(http.StatusOK, wire.KMSChange{Key: &wk})
}

func (h kmsHandlers) encrypt(c *Call) error {
	var in wire.KMSEncryptRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	pt, err := decodeB64("plaintext", in.Plaintext)
	if err != nil {
		return err
	}
	r, err := h.svc.Encrypt(c.Context(), kmsCaller(c), c.R.PathValue("name"), pt, in.Context)
	clear(pt)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.KMSEncryptResponse{Ciphertext: r.Ciphertext, Key: r.Key, Version: r.Version})
}

func (h kmsHandlers) decrypt(c *Call) error {
	var in wire.KMSDecryptRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	r, err := h.svc.Decrypt(c.Context(), kmsCaller(c), in.Ciphertext, c.R.PathValue("name"), in.Context)
	if err != nil {
		return err
	}
	out := wire.KMSDecryptResponse{Plaintext: base64.StdEncoding.EncodeToString(r.Plaintext.Bytes()), Key: r.Key, Version: r.Version}
	clear(r.Plaintext.Bytes())
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) encryptBatch(c *Call) error {
	var in wire.KMSEncryptBatchRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	items := make([]kms.EncryptItem, len(in.Items))
	defer func() {
		for _, it := range items {
			clear(it.Plaintext)
		}
	}()
	for i, it := range in.Items {
		pt, err := decodeB64(fmt.Sprintf("items[%d].plaintext", i), it.Plaintext)
		if err != nil {
			return err
		}
		items[i] = kms.EncryptItem{Plaintext: pt, Context: it.Context}
	}
	rs, err := h.svc.EncryptBatch(c.Context(), kmsCaller(c), c.R.PathValue("name"), items)
	if err != nil {
		return err
	}
	out := wire.KMSEncryptBatchResponse{Key: c.R.PathValue("name"), Items: make([]wire.KMSBatchCipher, len(rs))}
	for i, r := range rs {
		out.Items[i] = wire.KMSBatchCipher{Ciphertext: r.Ciphertext, Version: r.Version}
	}
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) decryptBatch(c *Call) error {
	var in wire.KMSDecryptBatchRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	items := make([]kms.DecryptItem, len(in.Items))
	for i, it := range in.Items {
		items[i] = kms.DecryptItem{Ciphertext: it.Ciphertext, Context: it.Context}
	}
	rs, err := h.svc.DecryptBatch(c.Context(), kmsCaller(c), c.R.PathValue("name"), items)
	if err != nil {
		return err
	}
	out := wire.KMSDecryptBatchResponse{Key: c.R.PathValue("name"), Items: make([]wire.KMSBatchPlain, len(rs))}
	for i, r := range rs {
		out.Items[i] = wire.KMSBatchPlain{Plaintext: base64.StdEncoding.EncodeToString(r.Plaintext.Bytes()), Version: r.Version}
		clear(r.Plaintext.Bytes())
	}
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) dataKey(c *Call) error {
	var in wire.KMSDataKeyRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	dk, err := h.svc.GenerateDataKey(c.Context(), kmsCaller(c), c.R.PathValue("name"), in.Context)
	if err != nil {
		return err
	}
	out := wire.KMSDataKeyResponse{Plaintext: base64.StdEncoding.EncodeToString(dk.Plaintext.Bytes()), Ciphertext: dk.Ciphertext, Key: dk.Key, Version: dk.Version}
	clear(dk.Plaintext.Bytes())
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) rewrap(c *Call) error {
	var in wire.KMSRewrapRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	name := c.R.PathValue("name")
	if got, _, err := kms.ParseCiphertextKey(in.Ciphertext); err == nil && got != name {
		return usererr.New(usererr.Invalid, "key_mismatch", "the ciphertext was made with key %q, not %q", got, name)
	}
	r, err := h.svc.Rewrap(c.Context(), kmsCaller(c), in.Ciphertext, in.Context)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.KMSEncryptResponse{Ciphertext: r.Ciphertext, Key: r.Key, Version: r.Version})
}

func (h kmsHandlers) listRequests(c *Call) error {
	rs, err := h.svc.ListRequests(c.Context(), c.R.URL.Query().Get("state"))
	if err != nil {
		return err
	}
	out := wire.KMSRequestList{Requests: []wire.KMSRequest{}}
	for _, r := range rs {
		out.Requests = append(out.Requests, *wireRequest(r))
	}
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) getRequest(c *Call) error {
	r, err := h.svc.GetRequest(c.Context(), c.R.PathValue("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireRequest(r))
}

// authorizeRequest asks policy whether the caller may take the request's
// own action on its subject: approving or cancelling a key destruction
// needs kms.key.destroy on that key. attrs tell policy which it is
// (context.approval == true for approvals, so a policy can demand fresh
// MFA of approvers as it does for op.approve).
func (h kmsHandlers) authorizeRequest(c *Call, id string, attrs map[string]any) error {
	r, err := h.svc.GetRequest(c.Context(), id)
	if err != nil {
		return err
	}
	typ, name, _ := strings.Cut(r.Subject, ":")
	res := Resource{Type: "Key", ID: name}
	if typ == "secret" {
		res.Type = "Secret"
	}
	return c.Authorize(r.Action, res, attrs)
}

func (h kmsHandlers) approve(c *Call) error {
	var in wire.KMSApproveRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	id := c.R.PathValue("id")
	if err := h.authorizeRequest(c, id, map[string]any{"approval": true}); err != nil {
		return err
	}
	r, err := h.svc.Approve(c.Context(), kmsCaller(c), id, in.Hash)
	if err != nil {
		return err
	}
	out := wireRequest(r)
	out.Warning = c.SeparationWarning()
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) cancel(c *Call) error {
	id := c.R.PathValue("id")
	if err := h.authorizeRequest(c, id, map[string]any{"cancel": true}); err != nil {
		return err
	}
	r, err := h.svc.Cancel(c.Context(), kmsCaller(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireRequest(r))
}

func (h kmsHandlers) putSecret(c *Call) error {
	var in wire.SecretPutRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	v, err := decodeB64("value", in.Value)
	if err != nil {
		return err
	}
	r, err := h.svc.PutSecret(c.Context(), kmsCaller(c), c.R.PathValue("path"), v, kms.PutOptions{Key: in.Key, Critical: in.Critical})
	clear(v)
	if err != nil {
		return err
	}
	if r.Pending != nil {
		return c.JSON(http.StatusAccepted, wire.SecretPutResponse{Pending: wireRequest(*r.Pending)})
	}
	return c.JSON(http.StatusOK, wire.SecretPutResponse{Secret: wireSecret(r.Secret)})
}

func (h kmsHandlers) readSecret(c *Call) error {
	var in wire.SecretReadRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	v, err := h.svc.GetSecret(c.Context(), kmsCaller(c), c.R.PathValue("path"), in.Version, in.Reason)
	if err != nil {
		return err
	}
	out := wire.SecretValue{Path: v.Path, Version: v.Version, Value: base64.StdEncoding.EncodeToString(v.Value.Bytes()), CreatedAt: v.CreatedAt}
	clear(v.Value.Bytes())
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) listSecrets(c *Call) error {
	ss, err := h.svc.ListSecrets(c.Context(), c.R.URL.Query().Get("prefix"))
	if err != nil {
		return err
	}
	out := wire.SecretList{Secrets: []wire.Secret{}}
	for _, s := range ss {
		out.Secrets = append(out.Secrets, *wireSecret(s))
	}
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) secretVersions(c *Call) error {
	s, vs, err := h.svc.SecretVersions(c.Context(), c.R.PathValue("path"))
	if err != nil {
		return err
	}
	out := wire.SecretVersions{Secret: *wireSecret(s), Versions: []wire.SecretVersion{}}
	for _, v := range vs {
		out.Versions = append(out.Versions, wire.SecretVersion{Version: v.Version, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy})
	}
	return c.JSON(http.StatusOK, out)
}

func (h kmsHandlers) deleteSecret(c *Call) error {
	r, err := h.svc.DeleteSecret(c.Context(), kmsCaller(c), c.R.PathValue("path"))
	if err != nil {
		return err
	}
	if r != nil {
		return c.JSON(http.StatusAccepted, wire.SecretDeleteResponse{Pending: wireRequest(*r)})
	}
	return c.JSON(http.StatusOK, wire.SecretDeleteResponse{Deleted: true})
}
