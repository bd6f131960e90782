package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

func (c *Console) routes() {
	c.mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/approvals", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET /ui/signin", c.signinPage)
	c.mux.HandleFunc("POST /ui/signin", c.signin)
	c.mux.HandleFunc("POST /ui/signout", c.signedIn(c.signout))
	c.mux.HandleFunc("GET /ui/approvals", c.signedIn(c.approvals))
	c.mux.HandleFunc("GET /ui/ops", c.signedIn(c.opsList))
	c.mux.HandleFunc("GET /ui/ops/{id}", c.signedIn(c.opPage))
	c.mux.HandleFunc("GET /ui/ops/{id}/progress", c.signedIn(c.opProgress))
	c.mux.HandleFunc("POST /ui/ops/{id}/approve", c.signedIn(c.approveOp))
	c.mux.HandleFunc("POST /ui/ops/{id}/deny", c.signedIn(c.denyOp))
	c.mux.HandleFunc("POST /ui/ops/{id}/halt", c.signedIn(c.haltOp))
	c.mux.HandleFunc("POST /ui/changes/{id}/approve", c.signedIn(c.approveChange))
	c.mux.HandleFunc("POST /ui/changes/{id}/deny", c.signedIn(c.denyChange))
	c.mux.HandleFunc("GET /ui/fleet", c.signedIn(c.fleet))
	c.mux.HandleFunc("GET /ui/log", c.signedIn(c.logPage))
	c.mux.HandleFunc("GET /ui/log/data", c.signedIn(c.logData))
	c.passkeyRoutes()
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.refuse(w, r, http.StatusNotFound, "There is no such page in the console.")
	})
}

// handler is a console page or action for a signed-in person. A POST has
// passed the CSRF check before it runs.
type handler func(w http.ResponseWriter, r *http.Request, s signedIn)

func (c *Console) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.session(w, r)
		if !ok {
			return
		}
		if r.Method == http.MethodPost && !checkCSRF(r, s) {
			c.refuse(w, r, http.StatusForbidden, "This form's security token is missing or wrong (it may be from an old page); reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// call is one API route served in-process for the signed-in person.
func (c *Console) call(r *http.Request, s signedIn, method, target string, in, out any) error {
	return c.cfg.API.Invoke(r.Context(), s.p, sourceAddr(r), method, target, in, out)
}

func (c *Console) page(s signedIn, title, nav string, data any) page {
	me := s.p
	return page{Title: title, Me: &me, CSRF: csrfToken(s.token), Nav: nav, Data: data}
}

// fail shows err on the page it belongs to.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s signedIn, err error) {
	status, msg := c.message(r, err)
	p := c.page(s, "Refused", "", nil)
	p.Error = msg
	c.render(w, r, status, "error", p)
}

// ---- sign-in -------------------------------------------------------------

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signin", page{Title: "Sign in"})
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if !c.signInAllowed(w, r, false) {
		return
	}
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "signin", page{Title: "Sign in", Error: "The sign-in form could not be read."})
		return
	}
	sess, err := c.cfg.Sessions.ConsoleSignIn(r.Context(), identity.ConsoleSignInRequest{
		Username: strings.TrimSpace(r.PostFormValue("username")), Password: r.PostFormValue("password"),
		OTP: strings.TrimSpace(r.PostFormValue("otp")), SourceIP: sourceIP(r), UserAgent: r.UserAgent()})
	if err != nil {
		status, msg := c.message(r, err)
		c.render(w, r, status, "signin", page{Title: "Sign in", Error: msg})
		return
	}
	setCookie(w, sess.Token.Reveal(), sess.ExpiresAt)
	http.Redirect(w, r, "/ui/approvals", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s signedIn) {
	if err := c.call(r, s, "POST", "/v1/logout", nil, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	clearCookie(w)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

// ---- approvals inbox -----------------------------------------------------

// opView is an operation as the console shows it: names, not ids.
type opView struct {
	Op          wire.Operation
	Requester   string
	Mine        bool
	Approved    bool // the viewer has approved it already
	Waves       []waveView
	Params      []paramView
	Verdicts    []wire.Verdict
	Approvals   []approvalView
	StepText    string
	Terminal    bool
	Running     bool
	CanDecide   bool
	Done        string
	BreakGlass  bool
	CreatedText string
}

// waveView is one wave of a plan card. A wave of more than a dozen hosts
// shows its first ten (Shown) and a count (More) with the whole list (All)
// folded away: ten thousand names in a paragraph is nothing an approver
// reads, but every one must be there to look at.
type waveView struct {
	Number int
	Canary bool
	Shown  []string
	More   int
	All    []string // nil when Shown is the whole wave
}

type paramView struct {
	Name, Value string
	Unusual     bool
}

type approvalView struct {
	Name, Role, At string
}

type changeView struct {
	CR       wire.ChangeRequest
	Mine     bool
	DiffText string
}

func (c *Console) people(r *http.Request, s signedIn) map[string]string {
	var out wire.UserList
	names := map[string]string{}
	if err := c.call(r, s, "GET", "/v1/users", nil, &out); err != nil {
		return names
	}
	for _, u := range out.Users {
		names[u.ID] = u.Username
	}
	return names
}

func nameOf(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n
	}
	return id
}

func (c *Console) viewOp(op wire.Operation, names map[string]string, me wire.Principal) opView {
	v := opView{Op: op, Requester: nameOf(names, op.RequesterID), Mine: op.RequesterID == me.ID, Verdicts: op.Verdicts,
		BreakGlass: op.BreakGlass, CreatedText: op.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC")}
	v.StepText = argvText(op.Plan.Step.Argv)
	unusual := map[string]bool{}
	for _, vd := range op.Verdicts {
		// The guardrail's sentence begins "NAME=VALUE is more than …".
		if vd.Rule == "unusual_input" {
			if name, _, ok := strings.Cut(vd.Message, "="); ok {
				unusual[name] = true
			}
		}
	}
	keys := make([]string, 0, len(op.Plan.Params))
	for k := range op.Plan.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Params = append(v.Params, paramView{Name: k, Value: op.Plan.Params[k], Unusual: unusual[k]})
	}
	for _, w := range op.Plan.Waves {
		wv := waveView{Number: w.Number, Canary: w.Number == 1}
		for _, h := range w.Hosts {
			wv.Shown = append(wv.Shown, nameOf(op.Plan.HostNames, h))
		}
		if len(wv.Shown) > 12 {
			wv.All, wv.Shown, wv.More = wv.Shown, wv.Shown[:10], len(wv.Shown)-10
		}
		v.Waves = append(v.Waves, wv)
	}
	for _, a := range op.Approvals {
		v.Approvals = append(v.Approvals, approvalView{Name: a.Name, Role: a.Role, At: a.At.UTC().Format("15:04:05 UTC")})
		if a.PersonID == me.ID {
			v.Approved = true
		}
	}
	v.CanDecide = op.State == "pending_approval" && !v.Mine && !v.Approved
	switch op.State {
	case "succeeded", "halted", "needs_attention", "aborted", "denied", "withdrawn", "void":
		v.Terminal = true
	case "running", "ready":
		v.Running = true
	}
	return v
}

// argvText shows an argument vector so that its words cannot be misread:
// an argument that is empty or holds a space, quote, backslash or
// anything a shell would treat specially is quoted. Joined with spaces
// alone, ["echo", "a; rm -rf /"] and ["echo", "a;", "rm", "-rf", "/"]
// read the same to the approver, who approves the one that runs.
func argvText(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return r <= ' ' || r > '~' || strings.ContainsRune("\"'`\\$;&|<>()*?[]{}#~!", r)
		}) {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func (c *Console) approvals(w http.ResponseWriter, r *http.Request, s signedIn) {
	var list wire.OperationList
	if err := c.call(r, s, "GET", "/v1/ops?state=pending_approval", nil, &list); err != nil {
		c.fail(w, r, s, err)
		return
	}
	names := c.people(r, s)
	var ops []opView
	for _, o := range list.Operations {
		var full wire.Operation // with live verdicts and host names
		if err := c.call(r, s, "GET", "/v1/ops/"+url.PathEscape(o.ID), nil, &full); err != nil {
			continue // gone or refused since the list: not shown
		}
		ops = append(ops, c.viewOp(full, names, s.p))
	}
	var changes wire.ChangeList
	var crs []changeView
	if err := c.call(r, s, "GET", "/v1/changes?state=pending", nil, &changes); err == nil {
		for _, cr := range changes.Changes {
			var full wire.ChangeRequest
			if err := c.call(r, s, "GET", "/v1/changes/"+url.PathEscape(cr.ID), nil, &full); err != nil {
				continue
			}
			diff, _ := json.MarshalIndent(full.Diff, "", "  ")
			crs = append(crs, changeView{CR: full, Mine: full.RequesterID == s.p.ID, DiffText: string(diff)})
		}
	}
	p := c.page(s, "Approvals", "approvals", struct {
		Ops     []opView
		Changes []changeView
	}{ops, crs})
	p.Note = doneNote(r.URL.Query().Get("done"))
	c.render(w, r, http.StatusOK, "approvals", p)
}

// doneNote is the sentence after an action; only these fixed sentences
// can be shown, so a crafted link cannot put words on the page.
func doneNote(done string) string {
	return map[string]string{
		"approved":        "Approved.",
		"denied":          "Denied.",
		"halted":          "Halted.",
		"change-approved": "The change request is approved.",
		"change-denied":   "The change request is denied.",
	}[done]
}

func (c *Console) opsList(w http.ResponseWriter, r *http.Request, s signedIn) {
	var list wire.OperationList
	if err := c.call(r, s, "GET", "/v1/ops?limit=50", nil, &list); err != nil {
		c.fail(w, r, s, err)
		return
	}
	names := c.people(r, s)
	var views []opView
	for _, o := range list.Operations {
		views = append(views, c.viewOp(o, names, s.p))
	}
	c.render(w, r, http.StatusOK, "ops", c.page(s, "Operations", "ops", views))
}

func (c *Console) opPage(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	var op wire.Operation
	if err := c.call(r, s, "GET", "/v1/ops/"+url.PathEscape(id), nil, &op); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := c.viewOp(op, c.people(r, s), s.p)
	p := c.page(s, "Operation "+op.Plan.Runbook, "ops", v)
	p.Note = doneNote(r.URL.Query().Get("done"))
	c.render(w, r, http.StatusOK, "op", p)
}

// opProgress is the live page's long poll: the API's progress route, with
// host names and the requester's name filled in.
func (c *Console) opProgress(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	q := url.Values{}
	if since := r.URL.Query().Get("since"); since != "" {
		if _, err := strconv.ParseInt(since, 10, 64); err != nil {
			http.Error(w, "since must be a whole number", http.StatusBadRequest)
			return
		}
		q.Set("since", since)
		q.Set("wait", "25s")
	}
	var prog wire.OpProgress
	if err := c.call(r, s, "GET", "/v1/ops/"+url.PathEscape(id)+"/progress?"+q.Encode(), nil, &prog); err != nil {
		status, msg := c.message(r, err)
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	var op wire.Operation
	names := map[string]string{}
	if err := c.call(r, s, "GET", "/v1/ops/"+url.PathEscape(id), nil, &op); err == nil {
		names = op.Plan.HostNames
	}
	type host struct {
		Name, State, Output, Error, Health, Rollback string
		ExitCode                                     int
	}
	type wave struct {
		Number int
		Hosts  []host
	}
	out := struct {
		State, Detail string
		Terminal      bool
		Version       int64
		CurrentWave   int
		Waves         []wave
	}{State: prog.State, Detail: prog.Detail, Terminal: prog.Terminal, Version: prog.Version, CurrentWave: prog.CurrentWave}
	for _, wv := range prog.Waves {
		x := wave{Number: wv.Number}
		for _, h := range wv.Hosts {
			// Output was redacted on the agent and again on the server.
			x.Hosts = append(x.Hosts, host{Name: nameOf(names, h.HostID), State: h.State, Output: h.Output, Error: h.Error,
				Health: h.Health, Rollback: h.Rollback, ExitCode: h.ExitCode})
		}
		out.Waves = append(out.Waves, x)
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// freshMFA proves a second factor for this session with the one-time code
// in the form (POST /v1/mfa, as `--otp` does), and carries the proof into
// s: the calls that follow are decided on s's MFA time, read when the
// request began, which is as old as the sign-in or the last proof.
func (c *Console) freshMFA(r *http.Request, s *signedIn) error {
	code := strings.TrimSpace(r.PostFormValue("otp"))
	if code == "" {
		return usererr.New(usererr.Invalid, "otp_missing", "Approving needs a current one-time code from your authenticator app.")
	}
	var out wire.MFAResponse
	if err := c.call(r, *s, "POST", "/v1/mfa", wire.MFARequest{OTP: code}, &out); err != nil {
		return err
	}
	s.p.MFAAt = out.MFAAt
	return nil
}

func (c *Console) approveOp(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	hash := r.PostFormValue("plan_hash")
	if hash == "" {
		c.fail(w, r, s, usererr.New(usererr.Invalid, "plan_hash_missing", "The approval form carries no plan hash; reload the page."))
		return
	}
	if err := c.freshMFA(r, &s); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var out wire.ApproveResponse
	if err := c.call(r, s, "POST", "/v1/ops/"+url.PathEscape(id)+"/approvals", wire.ApproveRequest{PlanHash: hash}, &out); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/ui/ops/"+url.PathEscape(id)+"?done=approved", http.StatusSeeOther)
}

func reasonOf(r *http.Request) (string, error) {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		return "", usererr.New(usererr.Invalid, "reason_missing", "Say why: a reason is required.")
	}
	return reason, nil
}

func (c *Console) denyOp(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	reason, err := reasonOf(r)
	if err == nil {
		err = c.call(r, s, "POST", "/v1/ops/"+url.PathEscape(id)+"/deny", wire.ReasonRequest{Reason: reason}, nil)
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/ui/approvals?done=denied", http.StatusSeeOther)
}

func (c *Console) haltOp(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	reason, err := reasonOf(r)
	if err == nil {
		err = c.call(r, s, "POST", "/v1/ops/"+url.PathEscape(id)+"/halt", wire.OpHaltRequest{Reason: reason}, nil)
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/ui/ops/"+url.PathEscape(id)+"?done=halted", http.StatusSeeOther)
}

func (c *Console) approveChange(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	hash := r.PostFormValue("hash")
	err := c.freshMFA(r, &s)
	if err == nil {
		err = c.call(r, s, "POST", "/v1/changes/"+url.PathEscape(id)+"/approvals", wire.ChangeApproveRequest{Hash: hash}, nil)
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/ui/approvals?done=change-approved", http.StatusSeeOther)
}

func (c *Console) denyChange(w http.ResponseWriter, r *http.Request, s signedIn) {
	id := r.PathValue("id")
	reason, err := reasonOf(r)
	if err == nil {
		err = c.call(r, s, "POST", "/v1/changes/"+url.PathEscape(id)+"/deny", wire.ReasonRequest{Reason: reason}, nil)
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/ui/approvals?done=change-denied", http.StatusSeeOther)
}

// ---- fleet ---------------------------------------------------------------

func (c *Console) fleet(w http.ResponseWriter, r *http.Request, s signedIn) {
	var hosts wire.HostList
	var services wire.ServiceList
	if err := c.call(r, s, "GET", "/v1/hosts", nil, &hosts); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.call(r, s, "GET", "/v1/services", nil, &services); err != nil {
		c.fail(w, r, s, err)
		return
	}
	type hostView struct {
		wire.Host
		Status string
		Seen   string
	}
	var hv []hostView
	counts := map[string]int{}
	for _, h := range hosts.Hosts {
		st := "down"
		switch {
		case !h.RevokedAt.IsZero():
			st = "revoked"
		case h.HeldBy != "":
			st = "held"
		case h.Live:
			st = "live"
		}
		counts[st]++
		seen := ""
		if !h.LastSeen.IsZero() {
			seen = h.LastSeen.UTC().Format("15:04:05 UTC")
		}
		hv = append(hv, hostView{Host: h, Status: st, Seen: seen})
	}
	slices.SortFunc(hv, func(a, b hostView) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "fleet", c.page(s, "Fleet", "fleet", struct {
		Hosts    []hostView
		Services []wire.Service
		Counts   map[string]int
	}{hv, services.Services, counts}))
}

// ---- log explorer ----------------------------------------------------------

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, s signedIn) {
	c.render(w, r, http.StatusOK, "log", c.page(s, "Log", "log", nil))
}

// logData gives the browser what it needs to check entries itself: the
// signed checkpoint note, the log's public key, the newest entries
// matching the filters, and an inclusion proof of each in the checkpoint's
// tree. The browser verifies; this handler only fetches through the API.
func (c *Console) logData(w http.ResponseWriter, r *http.Request, s signedIn) {
	q := r.URL.Query()
	kind, actor, subject := q.Get("kind"), q.Get("actor"), q.Get("subject")
	var since, until time.Time
	for _, x := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(x.name); v != "" {
			t, err := time.Parse("2006-01-02T15:04", v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("%s must be a time like 2026-12-03T15:04, not %q", x.name, v)})
				return
			}
			*x.t = t
		}
	}
	var seen uint64
	if v := q.Get("seen"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("seen must be a checkpoint's size (a whole number), not %q", v)})
			return
		}
		seen = n
	}
	var info wire.LogInfo
	if err := c.call(r, s, "GET", "/v1/log", nil, &info); err != nil {
		status, msg := c.message(r, err)
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	// The browser believes a checkpoint bigger than the last it verified
	// only with a consistency proof from that one; an older or equal size
	// it judges itself.
	var consistency [][]byte
	if seen > 0 && seen < info.Size {
		var proof wire.LogProof
		if err := c.call(r, s, "GET", fmt.Sprintf("/v1/log/proof/consistency?from=%d&to=%d", seen, info.Size), nil, &proof); err != nil {
			status, msg := c.message(r, err)
			writeJSON(w, status, map[string]string{"error": msg})
			return
		}
		consistency = proof.Hashes
	}
	type entry struct {
		Index uint64          `json:"index"`
		Leaf  []byte          `json:"leaf"`
		Entry json.RawMessage `json:"entry"`
		Proof [][]byte        `json:"proof"`
		// ActorName is the username behind a "person:<id>" actor, for
		// display; what is verified is Leaf.
		ActorName string `json:"actor_name,omitempty"`
	}
	names := c.people(r, s)
	out := struct {
		Checkpoint  string   `json:"checkpoint"`
		PublicKey   string   `json:"public_key"`
		Size        uint64   `json:"size"`
		Consistency [][]byte `json:"consistency"`
		Entries     []entry  `json:"entries"`
	}{Checkpoint: info.Checkpoint, PublicKey: info.PublicKey, Size: info.Size, Consistency: consistency, Entries: []entry{}}
	// Walk back from the newest signed entry, a page at a time, until 50
	// match or 2,000 have been looked at.
	const want, scanMax, pageSize = 50, 2000, 100
	end := info.Size
	for scanned := uint64(0); end > 0 && len(out.Entries) < want && scanned < scanMax; {
		start := end - min(end, pageSize)
		var page wire.LogEntries
		if err := c.call(r, s, "GET", fmt.Sprintf("/v1/log/entries?start=%d&end=%d", start, end), nil, &page); err != nil {
			status, msg := c.message(r, err)
			writeJSON(w, status, map[string]string{"error": msg})
			return
		}
		for i := len(page.Entries) - 1; i >= 0 && len(out.Entries) < want; i-- {
			e := page.Entries[i]
			var head struct {
				Kind     string `json:"kind"`
				Actor    string `json:"actor"`
				Subject  string `json:"subject"`
				TimeNano int64  `json:"time_unix_nano"`
			}
			_ = json.Unmarshal(e.Entry, &head)
			at := time.Unix(0, head.TimeNano)
			if kind != "" && !strings.Contains(head.Kind, kind) || actor != "" && !strings.Contains(head.Actor, actor) && names[strings.TrimPrefix(head.Actor, "person:")] != actor ||
				subject != "" && !strings.Contains(head.Subject, subject) ||
				!since.IsZero() && at.Before(since) || !until.IsZero() && at.After(until) {
				continue
			}
			var proof wire.LogProof
			if err := c.call(r, s, "GET", fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", e.Index, info.Size), nil, &proof); err != nil {
				status, msg := c.message(r, err)
				writeJSON(w, status, map[string]string{"error": msg})
				return
			}
			out.Entries = append(out.Entries, entry{Index: e.Index, Leaf: e.Leaf, Entry: e.Entry, Proof: proof.Hashes,
				ActorName: names[strings.TrimPrefix(head.Actor, "person:")]})
		}
		scanned += end - start
		end = start
	}
	writeJSON(w, http.StatusOK, out)
}

var funcs = template.FuncMap{
	"join": strings.Join,
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}
