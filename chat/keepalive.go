package chat

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Keepalive: every connection is pinged once a PingPeriod, so that a peer
// gone without a word is found (no pong within PongWait, and its read
// times out) and whatever sits between keeps the socket open.
//
// melody would ping from each session's write goroutine, through
// gorilla's WriteMessage, and a write there takes a goroutine past the
// 2 KiB it starts with: after its first ping, every idle connection held
// a 4 KiB write stack for the rest of its life (the runtime halves a
// stack only while less than a quarter of it is in use, and a goroutine
// waiting in melody's select uses more). Measured at 5,000 idle
// connections: 1.5 KiB a connection, from 25 s after they connected on
// (BENCHMARKS.md). So melody never pings, and the hub does, from one
// goroutine: the two bytes of a ping frame written straight to the socket
// (coalesced.writeDirect), as the broadcaster writes a quiet chat's
// messages. A connection it cannot write to that way (TLS, or a write
// under way) gets its ping from gorilla, between frames, on a goroutine
// that lives for that ping only.
//
// The connections are spread over keepaliveSlots slots by when they
// joined, and each tick pings one slot: a connection is pinged a whole
// period after it joined and every period after that, and the pings of
// thousands of connections are spread over the period, not sent (and
// their pongs read) at once.
type keepalive struct {
	mu    sync.Mutex
	slots [keepaliveSlots][]*client
	hand  int // the slot pinged last; one that joins goes in it
}

// keepaliveSlots is how many ticks a PingPeriod has: one a second by
// default.
const keepaliveSlots = 25

// pingFrame is a server's ping with no payload (RFC 6455, 5.5.2).
var pingFrame = []byte{0x80 | websocket.PingMessage, 0}

// noPings is melody's PingPeriod: the hub pings (keepalive), not melody.
const noPings = time.Duration(1<<63 - 1)

// add starts pinging c, a whole period from now.
func (k *keepalive) add(c *client) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c.pingSlot, c.pingPos = k.hand, len(k.slots[k.hand])
	k.slots[k.hand] = append(k.slots[k.hand], c)
}

// remove stops pinging c; it may not have been added.
func (k *keepalive) remove(c *client) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c.pingPos < 0 {
		return
	}
	s := k.slots[c.pingSlot]
	last := s[len(s)-1]
	s[c.pingPos], last.pingPos = last, c.pingPos
	s[len(s)-1] = nil
	k.slots[c.pingSlot] = s[:len(s)-1]
	c.pingPos = -1
}

// keepalive pings each slot in turn until the hub closes; it closes
// pingsDone when it stops.
func (h *Hub) keepalive() {
	defer close(h.pingsDone)
	tick := time.NewTicker(max(h.opts.PingPeriod/keepaliveSlots, 1))
	defer tick.Stop()
	var due []*client // one slot's connections, pinged outside the lock
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		k := &h.pings
		k.mu.Lock()
		k.hand = (k.hand + 1) % keepaliveSlots
		due = append(due[:0], k.slots[k.hand]...)
		k.mu.Unlock()
		for _, c := range due {
			h.ping(c)
		}
		clear(due) // hold no connection that may close
	}
}

// ping sends c a ping frame.
func (h *Hub) ping(c *client) {
	select {
	case <-c.gone:
		return
	default:
	}
	if c.conn != nil && c.conn.writeDirect(pingFrame) {
		return
	}
	deadline := time.Now().Add(h.opts.SlowTimeout)
	ws := c.s.WebsocketConnection()
	go func() {
		// An error ends the session through its next read or write, as a
		// ping melody wrote would.
		ws.WriteControl(websocket.PingMessage, nil, deadline)
	}()
}
