package handlers

import (
	"net/http"
	"strings"
	"testing"

	"nochat/db"
)

// A page on an origin -allow-origin names may use the API as its README
// says: its browser first asks (a CORS preflight) whether it may send
// JSON, a bot's token and an Idempotency-Key, and reads the answer. The
// preflight was answered 405 with nothing allowed, so such a page could
// send nothing but the tutorial's body-less POST.
func TestAnAllowedOriginsPageMaySendJSON(t *testing.T) {
	srv, _, _, _ := testServer{
		accounts: map[string]string{"Ann": db.RoleMember},
		deps:     func(d *Deps) { d.AllowOrigins = []string{"https://app.example"} },
	}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	ask := func(origin string, path ...string) (*http.Response, error) {
		req, _ := http.NewRequest("OPTIONS", srv.URL+append(path, "/rooms/lobby/messages")[0], nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,authorization,idempotency-key")
		return srv.Client().Do(req)
	}
	resp, err := ask("https://app.example")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("the preflight from the allowed origin: %d %v, want 204 allowing it", resp.StatusCode, h)
	}
	for _, name := range []string{"Content-Type", "Authorization", "Idempotency-Key"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), name) {
			t.Errorf("the preflight allows headers %q, not %s", h.Get("Access-Control-Allow-Headers"), name)
		}
	}
	// Another origin is allowed nothing.
	if resp, err = ask("https://other.example"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("the preflight from another origin: %d %v, want nothing allowed", resp.StatusCode, resp.Header)
	}
	// Nor is anything but the API, from the allowed origin either.
	if resp, err = ask("https://app.example", "/admin/people/1/role"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a preflight for the dashboard: %d %v, want nothing allowed", resp.StatusCode, resp.Header)
	}
	// The send itself, as the page's browser makes it: the answer is the
	// page's to read, its new message's address too.
	code, header, body := roomCall(t, srv, "POST", "/rooms/lobby/messages", ann, `{"message":"from app.example"}`,
		map[string]string{"Origin": "https://app.example", "Idempotency-Key": "k1"})
	if code != http.StatusCreated || header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("the send from app.example: %d %v %s, want 201 the page may read with its Location", code, header, body)
	}
}
