package chat_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
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
