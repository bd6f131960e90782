package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestOversizedOrUnreadableFormsSayWhat: a form over the 64 KiB limit was
// refused as "the security token is missing or wrong" (403), sending the
// person to reload a page that was fine; a form the server cannot read
// at all said the same. Each now says what was wrong, and the API is
// never called.
func TestOversizedOrUnreadableFormsSayWhat(t *testing.T) {
	c, api := newTestConsole(t)
	good := csrfToken(goodToken)
	big := url.Values{"csrf": {good}, "reason": {strings.Repeat("a", 100<<10)}}
	w := do(c, "POST", "/ui/ops/op_1/deny", big, goodToken, nil)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "too large") {
		t.Errorf("an oversized form: %d %s", w.Code, w.Body.String())
	}
	w = do(c, "POST", "/ui/signin", url.Values{"username": {"ann"}, "password": {strings.Repeat("p", 100<<10)}, "otp": {"1"}}, "", nil)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized sign-in form: %d", w.Code)
	}
	w = do(c, "POST", "/ui/ops/op_1/deny?x=1", nil, goodToken, map[string]string{"Content-Type": "multipart/form-data"})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "could not be read") {
		t.Errorf("a multipart form without a boundary: %d %s", w.Code, w.Body.String())
	}
	body := "--zz\r\nContent-Disposition: form-data; name=\"reason\"\r\n\r\n" + strings.Repeat("a", 100<<10) + "\r\n--zz--\r\n"
	r := httptest.NewRequest("POST", "https://console.test/ui/ops/op_1/deny", strings.NewReader(body))
	r.Header.Set("Content-Type", "multipart/form-data; boundary=zz")
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: goodToken})
	mw := httptest.NewRecorder()
	c.ServeHTTP(mw, r)
	if mw.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized multipart form: %d %s", mw.Code, mw.Body.String())
	}
	if len(api.calls) != 0 {
		t.Errorf("the API was called: %v", api.calls)
	}
}

// TestStepTextCannotBeMisread: the step was shown as its arguments joined
// with spaces, so one argument "a; rm -rf /" read exactly like five
// arguments; an approver could not tell what runs.
func TestStepTextCannotBeMisread(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"echo", "removing", "billing", "from", "service"}, `echo removing billing from service`},
		{[]string{"sh", "-c", "echo a; rm -rf /"}, `sh -c "echo a; rm -rf /"`},
		{[]string{"echo", "a b"}, `echo "a b"`},
		{[]string{"echo", ""}, `echo ""`},
		{[]string{"echo", "x\ny"}, `echo "x\ny"`},
		{[]string{"echo", `"a"`}, `echo "\"a\""`},
	} {
		if got := argvText(tc.argv); got != tc.want {
			t.Errorf("argvText(%q) = %s, want %s", tc.argv, got, tc.want)
		}
	}
}
