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
	// A refusal is the page's to read too, made before any route's
	// checks: a bot's token that is wrong, a send that is not JSON.
	for _, c := range []struct {
		what, body string
		header     map[string]string
		status     int
	}{
		{"a wrong bot token", `{"message":"x"}`, map[string]string{"Authorization": "Bearer nochat_bot_" + strings.Repeat("a", 43)}, http.StatusUnauthorized},
		{"a send that is not JSON", "", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
	} {
		c.header["Origin"] = "https://app.example"
		session := ann
		if c.header["Authorization"] != "" {
			session = ""
		}
		code, header, body := roomCall(t, srv, "POST", "/rooms/lobby/messages", session, c.body, c.header)
		if code != c.status || header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("%s from app.example: %d %v %s, want %d the page may read", c.what, code, header, body, c.status)
		}
	}
	// Reads, the tutorial's history among them, as a guest would make them.
	for _, path := range []string{"/discussion", "/discussion/latest/5", "/rooms/lobby/messages", "/search?q=x"} {
		code, header, body := get(t, srv, path, "", map[string]string{"Origin": "https://app.example"})
		if header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("GET %s from app.example: %d %v %.100s, want an answer the page may read", path, code, header, body)
		}
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
