package chat_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// TestConnectionSeriesEndsAtTheTrueCount has sessions come and go all at
// once while the series is busy (the test holds its lock), so that their
// goroutines queue up to record their counts. In a minute with no connection
// coming or going the dashboard shows the count the series holds last, which
// must then be the number open: the counts must be recorded in the order
// they happened.
func TestConnectionSeriesEndsAtTheTrueCount(t *testing.T) {
	r := newRoom(t, chat.Options{})
	// busy holds the series' lock while f starts sessions coming or going,
	// and a moment after, as a dashboard reading it would, so that their
	// goroutines queue up behind it.
	busy := func(f func()) {
		release := chat.HoldSeries(r.hub)
		f()
		time.Sleep(100 * time.Millisecond)
		release()
	}
	const rounds, wave = 10, 8
	for round := range rounds {
		conns := make([]*websocket.Conn, wave)
		var wg sync.WaitGroup
		busy(func() {
			for i := range conns {
				wg.Go(func() {
					d := websocket.Dialer{Subprotocols: []string{"echo-protocol"}, HandshakeTimeout: 10 * time.Second}
					conn, _, err := d.Dial(r.url, nil)
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
		waitOnline(t, r.hub, wave)
		if got := chat.ConnectionsLater(r.hub); got != wave {
			t.Fatalf("round %d: the dashboard will count %d connections with %d open", round, got, wave)
		}
		busy(func() {
			for _, conn := range conns {
				conn.Close()
			}
		})
		waitOnline(t, r.hub, 0)
		if got := chat.ConnectionsLater(r.hub); got != 0 {
			t.Fatalf("round %d: the dashboard will count %d connections with none open", round, got)
		}
	}
}

// TestErrorsOfTheLastHourSurviveARestart: the error log is kept in the
// database, the per-minute series in memory. Restarted, the dashboard said
// "0 errors in the last hour" beside a log listing two from ten minutes
// before. The series now starts from what the log knows of the last hour:
// every occurrence of an entry first and last seen within it, and at least
// the last of one last seen within it.
func TestErrorsOfTheLastHourSurviveARestart(t *testing.T) {
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	saved := []db.ErrorEntry{
		{Kind: "bad input", Place: "a", Count: 3, FirstSeen: ago(20 * time.Minute), LastSeen: ago(10 * time.Minute)}, // all 3 in the hour
		{Kind: "bad input", Place: "b", Count: 50, FirstSeen: ago(5 * time.Hour), LastSeen: ago(2 * time.Minute)},    // at least its last
		{Kind: "bad input", Place: "c", Count: 7, FirstSeen: ago(3 * time.Hour), LastSeen: ago(2 * time.Hour)},       // none
	}
	if err := store.SaveErrors(context.Background(), saved, 256); err != nil {
		t.Fatal(err)
	}
	r := serveRoom(t, store, chat.Options{})
	s := r.hub.Snapshot(10)
	if got := chat.Sum(s.Series.Errors, 60); got != 4 {
		t.Fatalf("after a restart, %d errors in the last hour with the log holding 3 and one more from it; want 4 (series %v)", got, s.Series.Errors)
	}
}

// The minute an hour back shares its bucket with the current one: an entry
// seen then is not in the hour shown, and must not empty the current
// minute's count (it did, read after it).
func TestSeededErrorsKeepTheCurrentMinute(t *testing.T) {
	now := time.Date(2026, 12, 8, 12, 30, 30, 0, time.UTC)
	at := func(h, m, s int) int64 { return time.Date(2026, 12, 8, h, m, s, 0, time.UTC).UnixMilli() }
	entries := []db.ErrorEntry{ // newest first, as the log lists them
		{Kind: "k", Place: "now", Count: 5, FirstSeen: at(12, 30, 20), LastSeen: at(12, 30, 20)},
		{Kind: "k", Place: "an hour ago", Count: 3, FirstSeen: at(11, 30, 40), LastSeen: at(11, 30, 40)},
	}
	if got := chat.Sum(chat.SeededErrors(entries, now), 60); got != 5 {
		t.Fatalf("seeded with 5 errors this minute and 3 an hour ago: %d in the hour shown, want 5", got)
	}
}
