package handlers

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Heavy answers are bounded per address and in all: the one over either
// waits its turn, then is refused (429 for its address, 503 for the
// server); a slot freed is taken by the next. A burst from one address
// within the bound only queues.
func TestHeavyAnswersAreBounded(t *testing.T) {
	s := newAnswerSlots(true)
	s.all, s.max, s.wait = make(chan struct{}, 3), 2, time.Second
	// Each answer is held until its gate opens: a client that does not
	// take it.
	var mu sync.Mutex
	gates := map[string]chan struct{}{}
	gate := func(name string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if gates[name] == nil {
			gates[name] = make(chan struct{})
		}
		return gates[name]
	}
	started := make(chan string, 10)
	h := s.bound(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("X-Name")
		started <- name
		<-gate(name)
		w.WriteHeader(http.StatusOK)
	}))
	ask := func(addr, name string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/discussion/latest/500", nil)
		r.Header.Set("X-Forwarded-For", addr)
		r.Header.Set("X-Name", name)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var wg sync.WaitGroup
	held := map[string]*httptest.ResponseRecorder{}
	var heldMu sync.Mutex
	for _, c := range []struct{ addr, name string }{{"203.0.113.1", "a1"}, {"203.0.113.1", "a2"}, {"198.51.100.1", "b1"}} {
		wg.Go(func() {
			w := ask(c.addr, c.name)
			heldMu.Lock()
			held[c.name] = w
			heldMu.Unlock()
		})
		<-started
	}
	t0 := time.Now()
	if w := ask("203.0.113.1", "a3"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a third answer to one address: %d, want 429", w.Code)
	} else if waited := time.Since(t0); waited < 750*time.Millisecond {
		t.Fatalf("the third answer to one address was refused after %v, want it to wait its turn first", waited)
	}
	t0 = time.Now()
	if w := ask("192.0.2.9", "c1"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("an answer past the bound in all: %d, want 503", w.Code)
	} else if waited := time.Since(t0); waited < 750*time.Millisecond {
		t.Fatalf("the answer past the bound was refused after %v, want it to wait its turn first", waited)
	}
	// One held answer is taken: the next waiting one goes through.
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- ask("192.0.2.9", "c2") }()
	time.Sleep(50 * time.Millisecond) // it waits for a slot
	close(gate("a1"))
	if name := <-started; name != "c2" {
		t.Fatalf("%s started, want c2", name)
	}
	close(gate("c2"))
	if w := <-done; w.Code != http.StatusOK {
		t.Fatalf("the answer that waited for a slot: %d, want 200", w.Code)
	}
	// A burst from one address past its bound queues, and is served as
	// the answers before it are taken.
	burst := make(chan int, 3)
	for i := range 3 {
		go func() {
			w := ask("198.51.100.1", fmt.Sprint("burst", i))
			burst <- w.Code
		}()
	}
	close(gate("a2"))
	close(gate("b1"))
	for range 3 {
		name := <-started
		close(gate(name))
	}
	for range 3 {
		if code := <-burst; code != http.StatusOK {
			t.Fatalf("an answer of a burst that queued: %d, want 200", code)
		}
	}
	wg.Wait()
	for name, w := range held {
		if w.Code != http.StatusOK {
			t.Errorf("held answer %s: %d", name, w.Code)
		}
	}
	if len(s.per) != 0 || len(s.all) != 0 {
		t.Fatalf("after every answer: %v per address, %d in all, want none", s.per, len(s.all))
	}
}

// A page (or history) that waits too long for its turn is refused in the
// words its asker reads: a browser opening the chat gets a line of text,
// a script reading /discussion its JSON. The page was answered JSON.
func TestHeavyAnswersRefusedInTheirAskersWords(t *testing.T) {
	slots := newAnswerSlots(false)
	slots.max, slots.wait = 1, 50*time.Millisecond
	held, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(slots.bound(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hold") {
			close(held)
			<-release
		}
	})))
	defer srv.Close()
	go http.Get(srv.URL + "/?hold")
	<-held
	defer close(release)
	for _, c := range []struct{ path, contentType, words string }{
		{"/", "text/plain", "too many pages are being sent to this address"},
		{"/r/garden", "text/plain", "too many pages"},
		{"/discussion", "application/json", `{"error":"too many pages`},
		{"/rooms/lobby/messages", "application/json", `{"error":"too many pages`},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.contentType) ||
			!strings.Contains(string(body), c.words) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s past its address's turn: %d %q %q, want 429 as %s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.contentType)
		}
	}
}
