package chat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// TestConnectionSeriesEndsAtTheTrueCount has sessions come and go all at
// once while the series is busy (the test holds its lock), so that their
// goroutines queue up to record their counts. In a minute with no connection
// coming or going the dashboard shows the count the series holds last, which
// must then be the number open: the counts must be recorded in the order
// they happened.
func TestConnectionSeriesEndsAtTheTrueCount(t *testing.T) {
	store, err := db.Open(t.Context(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(h.ServeWS))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Close(ctx)
		store.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	// What the chart shows for a later minute with no events in it.
	later := func() int64 {
		points := h.series.snapshot(time.Now().Add(time.Minute)).Connections
		return points[len(points)-1]
	}
	waitOnline := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); h.Online() != n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions open, want %d", h.Online(), n)
			}
		}
	}
	// busy holds the series' lock while f starts sessions coming or going,
	// and a moment after, as a dashboard reading it would, so that their
	// goroutines queue up behind it.
	busy := func(f func()) {
		h.series.mu.Lock()
		f()
		time.Sleep(100 * time.Millisecond)
		h.series.mu.Unlock()
	}
	const rounds, wave = 10, 8
	for round := range rounds {
		conns := make([]*websocket.Conn, wave)
		var wg sync.WaitGroup
		busy(func() {
			for i := range conns {
				wg.Go(func() {
					d := websocket.Dialer{Subprotocols: []string{"echo-protocol"}, HandshakeTimeout: 10 * time.Second}
					conn, _, err := d.Dial(url, nil)
					if err != nil {
						t.Error(err)
						return
					}
					conns[i] = conn
				})
			}
		})
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		waitOnline(wave)
		if got := later(); got != wave {
			t.Fatalf("round %d: the dashboard will count %d connections with %d open", round, got, wave)
		}
		busy(func() {
			for _, conn := range conns {
				conn.Close()
			}
		})
		waitOnline(0)
		if got := later(); got != 0 {
			t.Fatalf("round %d: the dashboard will count %d connections with none open", round, got)
		}
	}
}
