package bench_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/bench"
)

// centrifugoStandIn speaks the part of Centrifugo's JSON client protocol a
// run uses, as Centrifugo v6 does on the wire: a connect reply asking for
// pongs, a ping ({}) right after, the subscribe and publish replies, and a
// push of every publication to every subscriber, in order; and, like
// Centrifugo, it writes whatever is queued for a connection as one frame,
// one JSON object a line. (The real server is compared in BENCHMARKS.md;
// this checks the generator's side of the protocol.)
type centrifugoStandIn struct {
	mu      sync.Mutex
	subs    map[*standInConn]bool
	offset  int64
	batched atomic.Int64 // frames that carried more than one line
	pongs   atomic.Int64
}

type standInConn struct {
	out  chan []byte
	done chan struct{}
}

func (s *centrifugoStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &standInConn{out: make(chan []byte, 1<<16), done: make(chan struct{})}
	go func() { // the writer: everything queued, in one frame
		defer ws.Close()
		for {
			var b []byte
			select {
			case b = <-c.out:
			case <-c.done:
				return
			}
			b = bytes.Clone(b) // a push is shared by every subscriber's queue
			lines := 1
			for more := true; more; {
				select {
				case next := <-c.out:
					b = append(append(b, '\n'), next...)
					lines++
				default:
					more = false
				}
			}
			if lines > 1 {
				s.batched.Add(1)
			}
			if ws.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		}
	}()
	defer func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
		close(c.done)
	}()
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			return
		}
		for line := range bytes.SplitSeq(frame, []byte("\n")) {
			var cmd struct {
				ID        int64 `json:"id"`
				Connect   *struct{}
				Subscribe *struct{ Channel string }
				Publish   *struct {
					Channel string
					Data    json.RawMessage
				}
			}
			if string(line) == "{}" {
				s.pongs.Add(1)
				continue
			}
			if json.Unmarshal(line, &cmd) != nil {
				return
			}
			switch {
			case cmd.Connect != nil:
				c.out <- []byte(`{"id":1,"connect":{"client":"c","version":"6.9.1","ping":25,"pong":true}}`)
				c.out <- []byte(`{}`)
			case cmd.Subscribe != nil:
				s.mu.Lock()
				s.subs[c] = true
				s.mu.Unlock()
				c.out <- []byte(`{"id":2,"subscribe":{"recoverable":true,"epoch":"e"}}`)
			case cmd.Publish != nil:
				s.mu.Lock()
				s.offset++
				push, _ := json.Marshal(map[string]any{"push": map[string]any{"channel": cmd.Publish.Channel, "pub": map[string]any{"data": cmd.Publish.Data, "offset": s.offset}}})
				for sub := range s.subs {
					sub.out <- push
				}
				s.mu.Unlock()
				reply, _ := json.Marshal(map[string]any{"id": cmd.ID, "publish": map[string]any{}})
				c.out <- reply
			}
		}
	}
}

func TestAgainstCentrifugoProtocol(t *testing.T) {
	s := &centrifugoStandIn{subs: map[*standInConn]bool{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket"
	for _, mode := range []bench.Mode{bench.Burst, bench.Fanout} {
		t.Run(string(mode), func(t *testing.T) {
			res := run(t, bench.Config{URL: url, Proto: bench.ProtoCentrifugo, Mode: mode, Clients: 20, Duration: time.Second, Rate: 20})
			checkComplete(t, res, 20)
			if res.Acks != res.Sent {
				t.Errorf("acks = %d, want one publish reply per sent message (%d)", res.Acks, res.Sent)
			}
		})
	}
	if s.batched.Load() == 0 {
		t.Error("no frame carried more than one line: the batched form was not exercised")
	}
	if s.pongs.Load() < 40 {
		t.Errorf("%d pongs, want every client to answer the ping on both runs", s.pongs.Load())
	}
	if _, err := bench.Run(t.Context(), bench.Config{URL: url, Proto: bench.ProtoCentrifugo, Verify: true}); err == nil || !strings.Contains(err.Error(), "centrifugo") {
		t.Errorf("-verify with centrifugo: %v, want refused", err)
	}
}
