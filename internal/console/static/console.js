// Interlock console: live progress, passkeys and in-browser log
// verification. Plain JavaScript, loaded from this origin only (the page's
// Content-Security-Policy allows no inline script).
'use strict';

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function csrf() {
  const i = document.querySelector('input[name="csrf"]');
  return i ? i.value : '';
}

async function postJSON(url, body) {
  const form = new URLSearchParams(body);
  form.set('csrf', csrf());
  const r = await fetch(url, { method: 'POST', body: form, credentials: 'same-origin' });
  const out = await r.json().catch(() => ({ error: 'The server answered ' + r.status + '.' }));
  if (!r.ok) throw new Error(out.error || ('The server answered ' + r.status + '.'));
  return out;
}

// ---- live operation ---------------------------------------------------------

async function followOperation(box) {
  const id = box.dataset.op;
  const state = document.getElementById('live-state');
  const detail = document.getElementById('live-detail');
  const waves = document.getElementById('live-waves');
  let since = '';
  for (;;) {
    let p;
    try {
      const r = await fetch('/ui/ops/' + encodeURIComponent(id) + '/progress' + (since === '' ? '' : '?since=' + since), { credentials: 'same-origin' });
      p = await r.json();
      if (!r.ok) { detail.textContent = p.error || 'progress unavailable'; await sleep(5000); continue; }
    } catch (e) {
      detail.textContent = 'Lost contact with the server; retrying…';
      await sleep(3000);
      continue;
    }
    for (const s of [state, ...document.querySelectorAll('section.op h2 .state')]) {
      s.textContent = p.State;
      s.className = 'state state-' + p.State;
    }
    const halt = document.getElementById('halt');
    if (halt && p.Terminal) halt.hidden = true;
    detail.textContent = p.Detail || '';
    const parts = [];
    for (const w of p.Waves || []) {
      const rows = (w.Hosts || []).map(h => el('tr', { class: 'host' },
        el('th', { scope: 'row' }, h.Name),
        el('td', {}, el('span', { class: 'state state-' + h.State }, h.State)),
        el('td', {}, h.ExitCode >= 0 ? String(h.ExitCode) : ''),
        el('td', {}, h.Health || ''),
        el('td', {}, el('pre', {}, (h.Output || '') + (h.Error ? '\n' + h.Error : '')))));
      parts.push(el('h3', {}, 'Wave ' + w.Number + (w.Number === 1 ? ' (canary)' : '')),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Host'), el('th', { scope: 'col' }, 'State'),
          el('th', { scope: 'col' }, 'Exit'), el('th', { scope: 'col' }, 'Health'), el('th', { scope: 'col' }, 'Output (redacted)'))),
        el('tbody', {}, ...rows)));
    }
    waves.replaceChildren(...parts);
    if (p.Terminal) return;
    since = String(p.Version);
  }
}

function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }

// ---- passkeys -----------------------------------------------------------------

async function passkeySignIn() {
  const status = document.getElementById('passkey-status');
  try {
    status.textContent = 'Waiting for your passkey…';
    const begin = await postJSON('/ui/passkeys/signin/begin', {});
    const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.options.publicKey);
    const cred = await navigator.credentials.get({ publicKey: options });
    const out = await postJSON('/ui/passkeys/signin/finish', { ceremony: begin.ceremony, credential: JSON.stringify(cred.toJSON()) });
    window.location.assign(out.next);
  } catch (e) {
    status.textContent = 'Passkey sign-in failed: ' + e.message;
  }
}

async function passkeyRegister(ev) {
  ev.preventDefault();
  const status = document.getElementById('passkey-status');
  const name = document.getElementById('passkey-name').value;
  try {
    status.textContent = 'Waiting for your authenticator…';
    const begin = await postJSON('/ui/passkeys/register/begin', { otp: document.getElementById('passkey-otp').value });
    const options = PublicKeyCredential.parseCreationOptionsFromJSON(begin.options.publicKey);
    const cred = await navigator.credentials.create({ publicKey: options });
    const out = await postJSON('/ui/passkeys/register/finish', { ceremony: begin.ceremony, name: name, credential: JSON.stringify(cred.toJSON()) });
    window.location.assign(out.next);
  } catch (e) {
    status.textContent = 'Registering the passkey failed: ' + e.message;
  }
}

async function passkeyApprove(ev) {
  const b = ev.currentTarget;
  const form = b.closest('form');
  const note = form.querySelector('.passkey-note') || form.appendChild(el('p', { class: 'passkey-note', role: 'status' }));
  try {
    note.textContent = 'Waiting for your passkey…';
    const begin = await postJSON('/ui/ops/' + encodeURIComponent(b.dataset.op) + '/approve/passkey/begin', { plan_hash: b.dataset.planHash });
    const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.options.publicKey);
    const cred = await navigator.credentials.get({ publicKey: options });
    const out = await postJSON('/ui/ops/' + encodeURIComponent(b.dataset.op) + '/approve/passkey/finish',
      { ceremony: begin.ceremony, plan_hash: b.dataset.planHash, credential: JSON.stringify(cred.toJSON()) });
    window.location.assign(out.next);
  } catch (e) {
    note.textContent = 'Approving with a passkey failed: ' + e.message;
  }
}

// ---- log explorer: inclusion proofs and the checkpoint signature, checked here ----

const enc = new TextEncoder();

function b64(s) { return Uint8Array.from(atob(s), c => c.charCodeAt(0)); }

async function sha256(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const buf = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { buf.set(p, o); o += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

const leafHash = leaf => sha256(Uint8Array.of(0), leaf);
const nodeHash = (l, r) => sha256(Uint8Array.of(1), l, r);

// RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
async function rootFromInclusion(index, size, leaf, proof) {
  if (index >= size) return null;
  let fn = index, sn = size - 1;
  let r = await leafHash(leaf);
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

function equal(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }

// RFC 9162 §2.1.4.2: does proof show the tree of size `first` and root
// `firstRoot` to be a prefix of the tree of size `second` and root
// `secondRoot`? (0 < first < second.)
async function consistent(first, second, firstRoot, secondRoot, proof) {
  if (!(first > 0 && first < second) || proof.length === 0) return false;
  let path = proof;
  if ((first & (first - 1)) === 0) path = [firstRoot, ...proof]; // first is a power of two
  let fn = first - 1, sn = second - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, firstRoot) && equal(sr, secondRoot);
}

// The newest checkpoint this browser has verified, so that a server
// presenting an older one (hiding every entry since) is not believed.
const seenKey = 'interlock-log-seen';

function seenCheckpoint() {
  try {
    const s = JSON.parse(localStorage.getItem(seenKey) || 'null');
    if (s && Number.isSafeInteger(s.size) && s.size > 0 && typeof s.root === 'string') return s;
  } catch (e) { /* an unreadable record is as none */ }
  return null;
}

// checkAgainstSeen throws unless cp is the checkpoint this browser saw
// last or a later one proved consistent with it; it returns a sentence.
async function checkAgainstSeen(cp, proof) {
  const seen = seenCheckpoint();
  if (seen === null) return 'the first this browser has seen';
  const seenRoot = b64(seen.root);
  if (cp.size < seen.size) throw new Error('it covers ' + cp.size + ' entries, but this browser has verified a checkpoint of ' + seen.size + ': the log was rolled back');
  if (cp.size === seen.size) {
    if (!equal(cp.root, seenRoot)) throw new Error('it has another root than the checkpoint of the same size this browser verified before: the log was forked');
    return 'the same this browser verified before';
  }
  if (!await consistent(seen.size, cp.size, seenRoot, cp.root, proof.map(b64))) {
    throw new Error('it is not proved consistent with the checkpoint of ' + seen.size + ' entries this browser verified before: the log was rewritten');
  }
  return 'proved consistent with the checkpoint of ' + seen.size + ' entries this browser verified before';
}

// A C2SP signed note: the text, a blank line, then "— name base64(keyhash[4] || sig)".
// The verifier key is "name+hash+base64(0x01 || ed25519 public key)".
async function verifyCheckpoint(note, vkey) {
  // The key's base64 may itself hold '+': split at the first two only.
  const i = vkey.indexOf('+'), j = vkey.indexOf('+', i + 1);
  const name = vkey.slice(0, i), hash = vkey.slice(i + 1, j), keyB64 = vkey.slice(j + 1);
  const key = b64(keyB64);
  if (key[0] !== 1 || key.length !== 33) throw new Error('the log key is not an Ed25519 key');
  const pub = await crypto.subtle.importKey('raw', key.slice(1), { name: 'Ed25519' }, false, ['verify']);
  const split = note.indexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint is not a signed note');
  const text = note.slice(0, split + 1);
  let ok = false;
  for (const line of note.slice(split + 2).split('\n')) {
    const m = line.match(/^\u2014 (\S+) (\S+)$/);
    if (!m || m[1] !== name) continue;
    const raw = b64(m[2]);
    if (raw.length !== 68 || raw.slice(0, 4).reduce((a, b) => a + b.toString(16).padStart(2, '0'), '') !== hash) continue;
    if (await crypto.subtle.verify({ name: 'Ed25519' }, pub, raw.slice(4), enc.encode(text))) ok = true;
  }
  if (!ok) throw new Error('the checkpoint signature does not verify with the log key');
  const lines = text.split('\n');
  return { origin: lines[0], size: Number(lines[1]), root: b64(lines[2]) };
}

async function loadLog(form) {
  const rows = document.getElementById('log-rows');
  const status = document.getElementById('log-checkpoint');
  const q = new URLSearchParams(new FormData(form));
  for (const [k, v] of [...q]) if (v === '') q.delete(k);
  // datetime-local is the viewer's local time; the server filters in UTC.
  for (const k of ['since', 'until']) if (q.has(k)) q.set(k, new Date(q.get(k)).toISOString().slice(0, 16));
  const seen = seenCheckpoint();
  if (seen !== null) q.set('seen', String(seen.size));
  const r = await fetch('/ui/log/data?' + q, { credentials: 'same-origin' });
  const d = await r.json();
  if (!r.ok) { status.textContent = d.error; rows.replaceChildren(); return; }
  let cp = null;
  try {
    // The log key is pinned in this browser the first time it is seen, as
    // `interlock login` pins it: a server that later presents another key
    // is not believed.
    const pinned = localStorage.getItem('interlock-log-key');
    if (pinned === null) localStorage.setItem('interlock-log-key', d.public_key);
    else if (pinned !== d.public_key) throw new Error('the server presents log key ' + d.public_key + ', not the ' + pinned + ' this browser pinned');
    const signed = await verifyCheckpoint(d.checkpoint, d.public_key);
    const history = await checkAgainstSeen(signed, d.consistency || []);
    localStorage.setItem(seenKey, JSON.stringify({ size: signed.size, root: d.checkpoint.split('\n')[2] }));
    cp = signed;
    status.textContent = 'Checkpoint of ' + cp.size + ' entries, signature verified in this browser with ' + d.public_key.split('+')[0] + '; ' + history + '.';
  } catch (e) {
    status.textContent = 'The checkpoint is NOT verified: ' + e.message;
  }
  const out = [];
  for (const e of d.entries) {
    const leaf = b64(e.leaf);
    let verdict = 'not verified';
    if (cp) {
      const root = await rootFromInclusion(e.index, cp.size, leaf, (e.proof || []).map(b64));
      if (root && equal(root, cp.root)) verdict = 'verified';
    }
    let body = {};
    try { body = JSON.parse(new TextDecoder().decode(leaf)); } catch (x) { verdict = 'not verified'; }
    const when = body.time_unix_nano ? new Date(body.time_unix_nano / 1e6).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '';
    out.push(el('tr', { 'data-index': String(e.index) },
      el('td', {}, String(e.index)), el('td', {}, when), el('td', {}, body.kind || ''), el('td', {}, e.actor_name ? e.actor_name + ' (' + body.actor + ')' : (body.actor || '')),
      el('td', {}, body.subject || ''),
      el('td', {}, el('span', { class: 'proof proof-' + (verdict === 'verified' ? 'verified' : 'failed') }, verdict))));
  }
  if (!out.length) out.push(el('tr', {}, el('td', { colspan: '6' }, 'No entries match.')));
  rows.replaceChildren(...out);
}

document.addEventListener('DOMContentLoaded', () => {
  const live = document.getElementById('live');
  if (live) followOperation(live);
  const pk = document.getElementById('passkey-signin');
  if (pk) pk.addEventListener('click', passkeySignIn);
  const reg = document.getElementById('passkey-register');
  if (reg) reg.addEventListener('submit', passkeyRegister);
  for (const b of document.querySelectorAll('button.approve-passkey')) b.addEventListener('click', passkeyApprove);
  const lf = document.getElementById('log-filter');
  if (lf) {
    lf.addEventListener('submit', ev => { ev.preventDefault(); loadLog(lf); });
    loadLog(lf);
  }
});
