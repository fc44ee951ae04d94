package handlers

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// No route panics on purpose, so recoverPanics is tested here, inside the
// package, wrapped around handlers that do: a panic is a logged 500 and the
// server goes on serving.

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanicInAHandlerIsA500AndTheServerGoesOn(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom: a bug") })
	mux.HandleFunc("GET /nil", func(http.ResponseWriter, *http.Request) {
		var m map[string]int
		m["x"]++ // a runtime error, not a string
	})
	mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "fine") })
	mux.HandleFunc("POST /boom", func(http.ResponseWriter, *http.Request) { panic("boom: a bug with a body") })
	var rec recorder
	srv := httptest.NewServer(recoverPanics(log, &rec, false, mux, securityHeaders(limitBodies(Deps{}, mux))))
	defer srv.Close()

	get := func(path string) (*http.Response, string, error) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	for _, path := range []string{"/boom", "/nil", "/boom"} {
		resp, body, err := get(path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("GET %s: status %d, want 500", path, resp.StatusCode)
		}
		// The user sees a plain message, not the panic or a stack.
		if strings.Contains(body, "boom") || strings.Contains(body, "goroutine") || strings.TrimSpace(body) == "" {
			t.Fatalf("GET %s: body %q, want a plain error", path, body)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET %s: the 500 lacks the security headers", path)
		}
		if _, body, err := get("/ok"); err != nil || body != "fine" {
			t.Fatalf("after a panic, GET /ok: %q, %v", body, err)
		}
	}
	// With a body: limitBodies hands the mux a copy of the request.
	if resp, err := srv.Client().Post(srv.URL+"/boom", "text/plain", strings.NewReader("a body")); err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST /boom: %v %v, want 500", resp, err)
	}
	// The log has each panic, with its value and where it happened.
	if got := strings.Count(logs.String(), "level=ERROR msg=panic"); got != 4 {
		t.Fatalf("%d panics logged, want 4:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "boom: a bug") || !strings.Contains(logs.String(), "assignment to entry in nil map") || !strings.Contains(logs.String(), "recover_test.go") {
		t.Fatalf("the log lacks the panic values or the stack:\n%s", logs.String())
	}
	// And each is an entry in the admin's error log.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.kinds) != 4 || rec.kinds[0] != "panic" {
		t.Fatalf("error log entries %q, want 4 panics", rec.kinds)
	}
	// Filed under the route that panicked: a fixed text, not the path.
	if got, want := strings.Join(rec.places, ", "), "GET /boom, GET /nil, GET /boom, POST /boom"; got != want {
		t.Fatalf("panics filed under %q, want %q", got, want)
	}

	// http.ErrAbortHandler is the server's own way to cut a response: it
	// is passed on (the connection is dropped), not logged as a bug.
	if _, _, err := get("/abort"); err == nil {
		t.Fatal("GET /abort answered; want the connection cut")
	}
	if strings.Count(logs.String(), "msg=panic") != 4 {
		t.Fatalf("ErrAbortHandler was logged as a panic:\n%s", logs.String())
	}
	if _, body, err := get("/ok"); err != nil || body != "fine" {
		t.Fatalf("after an abort, GET /ok: %q, %v", body, err)
	}
}

// recorder keeps the error-log entries a handler makes.
type recorder struct {
	mu     sync.Mutex
	kinds  []string
	places []string
}

func (r *recorder) RecordErrorAt(kind, place, _, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, kind)
	r.places = append(r.places, place)
}
