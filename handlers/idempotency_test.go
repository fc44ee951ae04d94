package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/static"
)

// The two REST sends take an Idempotency-Key with a cid's rules: a retry
// under the same key (same user, within the window) is the first send.

// sendRoute is one of the two ways to send over REST.
type sendRoute struct {
	name   string
	status int // of a send that worked
	req    func(base, user, text string) *http.Request
}

var sendRoutes = []sendRoute{
	{"POST /discussion", http.StatusCreated, func(base, user, text string) *http.Request {
		b, _ := json.Marshal(map[string]string{"user": user, "message": text})
		req, _ := http.NewRequest("POST", base+"/discussion", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		return req
	}},
	{"POST /discussion/{message}", http.StatusOK, func(base, user, text string) *http.Request {
		req, _ := http.NewRequest("POST", base+"/discussion/"+strings.ReplaceAll(text, " ", "%20")+"?user="+user, nil)
		return req
	}},
}

func withKey(req *http.Request, keys ...string) *http.Request {
	for _, k := range keys {
		req.Header.Add("Idempotency-Key", k)
	}
	return req
}

// latestRows returns the room's messages, newest last.
func latestRows(t *testing.T, a *app) []db.Message {
	t.Helper()
	msgs, err := a.store.Latest(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestIdempotencyKeyOnBothSends(t *testing.T) {
	for _, route := range sendRoutes {
		t.Run(route.name, func(t *testing.T) {
			a := newApp(t)
			send := func(user, text string, keys ...string) response {
				t.Helper()
				return roundTrip(t, a.srv.Client(), withKey(route.req(a.srv.URL, user, text), keys...))
			}
			first := send("curl", "hello there", "k-1")
			if first.status != route.status || first.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("first send: %d %q %v, want %d, not a replay", first.status, first.body, first.header, route.status)
			}
			retry := send("curl", "hello there", "k-1")
			if retry.status != route.status || retry.body != first.body || retry.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry: %d %q %v, want %d %q marked a replay", retry.status, retry.body, retry.header, route.status, first.body)
			}
			if rows := latestRows(t, a); len(rows) != 1 {
				t.Fatalf("%d messages stored after a retry, want 1", len(rows))
			}

			// The key is the sender's: another user's send under it is theirs.
			if r := send("bob", "hello there", "k-1"); r.status != route.status || r.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("bob's send under curl's key: %d %q, want %d, stored", r.status, r.body, route.status)
			}
			// Another text under a known key: refused, never a silent replay.
			if r := send("curl", "something else", "k-1"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"error":"Idempotency-Key was used for another message`) {
				t.Fatalf("reused key: %d %q, want 422 with an error", r.status, r.body)
			}
			for name, keys := range map[string][]string{
				"empty":             {""},
				"65 characters":     {strings.Repeat("k", 65)},
				"a space":           {"k 1"},
				"not ASCII":         {"clé"},
				"a tab":             {"k\t1"},
				"given twice":       {"k-2", "k-3"},
				"given twice, same": {"k-2", "k-2"},
			} {
				if r := send("curl", "refused", keys...); r.status != http.StatusBadRequest || !strings.Contains(r.body, `"error":"Idempotency-Key`) {
					t.Errorf("key %s: %d %q, want 400 naming Idempotency-Key", name, r.status, r.body)
				}
			}
			if r := send("curl", "at the limit", strings.Repeat("k", 64)); r.status != route.status {
				t.Errorf("key of 64 characters: %d %q, want %d", r.status, r.body, route.status)
			}
			rows := latestRows(t, a)
			if got, want := joined(rows), "hello there,hello there,at the limit"; got != want {
				t.Fatalf("room holds %q, want %q", got, want)
			}
			if rows[0].User != "curl" || rows[1].User != "bob" {
				t.Fatalf("stored %+v, want curl's then bob's", rows)
			}
		})
	}
}

// commitGate is an Observer that holds the first commit's answers back
// until released: the message is stored, the sender not yet told.
type commitGate struct {
	once, releaseOnce sync.Once
	committed, open   chan struct{}
}

func newCommitGate() *commitGate {
	return &commitGate{committed: make(chan struct{}), open: make(chan struct{})}
}

func (g *commitGate) Committed(int, time.Duration, time.Duration, error) {
	g.once.Do(func() {
		close(g.committed)
		<-g.open
	})
}
func (g *commitGate) Broadcast(int, time.Duration) {}
func (g *commitGate) Error(string)                 {}
func (g *commitGate) release()                     { g.releaseOnce.Do(func() { close(g.open) }) }

// answerRecorder keeps what a handler answered, even to a client gone.
type answerRecorder struct {
	http.ResponseWriter
	status int
	body   strings.Builder
}

func (w *answerRecorder) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *answerRecorder) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// TestIdempotencyKeyRetryAfterTheClientGaveUp is the send that timed out: the
// client goes away after its message is committed and before it is
// answered. Its retry with the same key gets that message, and the room
// holds it once.
func TestIdempotencyKeyRetryAfterTheClientGaveUp(t *testing.T) {
	for _, route := range sendRoutes {
		t.Run(route.name, func(t *testing.T) {
			store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			gate := newCommitGate()
			hub, err := chat.New(store, chat.Options{Observer: gate})
			if err != nil {
				t.Fatal(err)
			}
			h := handlers.New(handlers.Deps{Store: store, Hub: hub, Assets: static.New(), SendRate: 1000, SendBurst: 1000})
			answered := make(chan *answerRecorder, 4)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := &answerRecorder{ResponseWriter: w}
				h.ServeHTTP(rec, r)
				answered <- rec
			}))
			t.Cleanup(func() {
				gate.release()
				srv.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				hub.Close(ctx)
				store.Close()
			})

			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error, 1)
			go func() {
				req := withKey(route.req(srv.URL, "curl", "sent once"), "retry-me").WithContext(ctx)
				resp, err := srv.Client().Do(req)
				if err == nil {
					resp.Body.Close()
					err = errors.New("answered " + resp.Status)
				}
				gaveUp <- err
			}()
			select {
			case <-gate.committed:
			case <-time.After(20 * time.Second):
				t.Fatal("the send was never committed")
			}
			cancel() // the client times out: committed, not yet answered
			if err := <-gaveUp; !errors.Is(err, context.Canceled) {
				t.Fatalf("client: %v, want it to give up unanswered", err)
			}
			select {
			case a := <-answered:
				// What a proxy in between would have passed on: not "not
				// stored", which would invite a retry without the key.
				if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body.String(), "may be stored") {
					t.Fatalf("the abandoned send was answered %d %q, want 503 saying it may be stored", a.status, a.body.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the abandoned send was never answered")
			}
			gate.release()

			rows, err := store.Latest(context.Background(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].Message != "sent once" {
				t.Fatalf("room holds %+v, want the abandoned send, stored", rows)
			}
			retry := roundTrip(t, srv.Client(), withKey(route.req(srv.URL, "curl", "sent once"), "retry-me"))
			if retry.status != route.status || retry.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry: %d %q, want %d marked a replay", retry.status, retry.body, route.status)
			}
			if route.status == http.StatusCreated {
				var m db.Message
				want := rows[0]
				want.HTML = chat.RenderHTML(want.Message)
				if err := json.Unmarshal([]byte(retry.body), &m); err != nil || !reflect.DeepEqual(m, want) {
					t.Fatalf("retry answered %q, want the stored %+v", retry.body, rows[0])
				}
			}
			if rows, _ := store.Latest(context.Background(), 10); len(rows) != 1 {
				t.Fatalf("room holds %d messages after the retry, want 1", len(rows))
			}
		})
	}
}
