package chat_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// errorByKind finds the entry of kind whose place has the given prefix.
func errorByKind(t *testing.T, h *chat.Hub, kind, place string) db.ErrorEntry {
	t.Helper()
	for _, e := range h.Snapshot(chat.ErrorLogSize).Errors {
		if e.Kind == kind && strings.HasPrefix(e.Place, place) {
			return e
		}
	}
	t.Fatalf("no %q entry at %q in the error log", kind, place)
	return db.ErrorEntry{}
}

// Each frame {"type":"tN"} is refused with a text naming its type: 1,001
// distinct details on one socket. The log used to evict the new entry it
// had just made and then dereference it while flushing: the process died.
func TestDistinctRefusalsOnOneSocketDoNotCrashTheLog(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	for i := range 1001 {
		c.send(fmt.Sprintf(`{"type":"t%d"}`, i))
		if d := c.expect("error"); d.Code != "bad_request" {
			t.Fatalf("frame %d: code %q, want bad_request", i, d.Code)
		}
	}
	if err := chat.FlushErrors(r.hub); err != nil {
		t.Fatal(err)
	}
	sendAcked(t, c, "still serving")
	e := errorByKind(t, r.hub, chat.KindBadInput, "WebSocket frame")
	if e.Count != 1001 || !strings.Contains(e.Detail, `"t1000"`) {
		t.Fatalf("entry %+v, want count 1001 and the latest type as its detail", e)
	}
	if n := chat.ErrorEntries(r.hub); n != 1 {
		t.Fatalf("%d entries for one kind of refusal, want 1", n)
	}
}

// An earlier run left 1,000 rows; the first new error after a restart used
// to evict itself and kill the server.
func TestRestartWithAFullLogSurvivesANewError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	old := time.Now().Add(-time.Hour).UnixMilli()
	var rows []db.ErrorEntry
	for i := range 1000 {
		rows = append(rows, db.ErrorEntry{Kind: chat.KindBadInput, Place: fmt.Sprintf("old %d", i), Detail: "d", Count: 1, FirstSeen: old, LastSeen: old + int64(i)})
	}
	if err := store.SaveErrors(context.Background(), rows, 1000); err != nil {
		t.Fatal(err)
	}
	hub, err := chat.New(store, chat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
	})
	hub.RecordErrorAt(chat.KindBadOrigin, "test", "origin https://new.example may not open a socket here", "127.0.0.1")
	if err := chat.FlushErrors(hub); err != nil {
		t.Fatal(err)
	}
	errorByKind(t, hub, chat.KindBadOrigin, "test")
	if n := chat.ErrorEntries(hub); n > chat.ErrorLogSize {
		t.Fatalf("%d entries in memory, want at most %d", n, chat.ErrorLogSize)
	}
	saved, err := store.RecentErrors(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) > chat.ErrorLogSize || saved[0].Kind != chat.KindBadOrigin {
		t.Fatalf("%d rows, newest %+v; want at most %d, the new error first", len(saved), saved[0], chat.ErrorLogSize)
	}
}

// 100,000 refused upgrades with distinct texts from 50,000 addresses, driven
// through the hub's HTTP edge without sockets (a socket each would take
// minutes), then more through real sockets: the log stays a handful of
// entries and rows, the room keeps serving, and a restart reads it back.
func TestHundredThousandDistinctErrorsKeepTheLogBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hub, err := chat.New(store, chat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(hub.ServeWS))
	closeHub := func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
	}
	defer func() {
		if hub != nil {
			closeHub()
		}
	}()

	const n = 100_000
	for i := range n {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:%d", i/65536%256, i/256%256, i%256, 1024+i%60000)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Protocol", "nochat.v1")
		switch i % 4 {
		case 0:
			req.Header.Set("Sec-WebSocket-Protocol", fmt.Sprintf("p%d", i))
		case 1:
			req.Header.Set("Origin", fmt.Sprintf("https://e%d.example", i))
		case 2:
			req.URL.RawQuery = fmt.Sprintf("after=x%d", i)
		case 3:
			req.URL.RawQuery = "user=" + strings.Repeat("ü", 40+i%50)
		}
		w := httptest.NewRecorder()
		hub.ServeWS(w, req)
		if w.Code < 400 {
			t.Fatalf("request %d answered %d, want a refusal", i, w.Code)
		}
		if i%10_000 == 0 {
			if err := chat.FlushErrors(hub); err != nil {
				t.Fatal(err)
			}
		}
	}
	// And through real sockets: distinct origins over HTTP, distinct frame
	// types and close reasons over WebSockets.
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	for i := range 200 {
		h := http.Header{"Origin": {fmt.Sprintf("https://real%d.example", i)}}
		if _, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(url, h); err == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %d: %v %v, want 403", i, err, resp)
		}
	}
	r := &room{hub: hub, store: store, srv: srv, url: url}
	for i := range 20 {
		c := r.dial(t, "nochat.v1", "")
		for j := range 50 {
			c.send(fmt.Sprintf(`{"type":"c%d-%d"}`, i, j))
			c.expect("error")
		}
		c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000+i, fmt.Sprintf("reason %d", i)))
		c.conn.Close()
	}
	c := r.dial(t, "nochat.v1", "")
	sendAcked(t, c, "still serving")
	c.conn.Close()
	if err := chat.FlushErrors(hub); err != nil {
		t.Fatal(err)
	}

	// A handful of places, whatever the texts.
	const bound = 16
	if got := chat.ErrorEntries(hub); got > bound {
		t.Fatalf("%d entries in memory after %d distinct errors, want at most %d", got, n, bound)
	}
	entries := hub.Snapshot(chat.ErrorLogSize).Errors
	var total int64
	for _, e := range entries {
		t.Logf("%s at %s: ×%d, latest %q from %s", e.Kind, e.Place, e.Count, e.Detail, e.Subject)
		total += e.Count
		if e.Detail == "" || e.Subject == "" {
			t.Errorf("entry %+v has no sample", e)
		}
	}
	if total < n+200+1000 {
		t.Fatalf("the entries count %d errors, want at least %d", total, n+1200)
	}
	if e := errorByKind(t, hub, chat.KindBadOrigin, "WebSocket upgrade"); !strings.Contains(e.Detail, "real199.example") {
		t.Errorf("origin entry's sample %q, want the latest origin", e.Detail)
	}
	// The last close frames may still be on their way to the log.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := chat.FlushErrors(hub); err != nil {
			t.Fatal(err)
		}
		entries = hub.Snapshot(chat.ErrorLogSize).Errors
		rows, err := store.RecentErrors(context.Background(), 100_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == len(entries) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows on disk, %d entries in memory: want the same", len(rows), len(entries))
		}
	}

	// A restart reads the same log back and takes new errors.
	closeHub()
	hub = nil
	again, err := chat.New(store, chat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		again.Close(ctx)
	}()
	if got := len(again.Snapshot(chat.ErrorLogSize).Errors); got != len(entries) {
		t.Fatalf("after a restart %d entries, want %d", got, len(entries))
	}
	again.RecordErrorAt(chat.KindBadOrigin, "after restart", "a new one", "test")
	if err := chat.FlushErrors(again); err != nil {
		t.Fatal(err)
	}
}
