package chat

import (
	"net"
	"sync"
	"time"
)

// coalesced is the connection a socket's frames are written through: when
// more frames wait behind the one being written, it keeps the bytes and
// sends them with the next ones, so that a client with a backlog costs one
// write system call for many frames instead of one each. The frames stay
// what they were: the client reads the same WebSocket frames, one per
// message, only fewer TCP segments carry them.
//
// Frames leave as soon as nothing waits behind them, so a lone frame is
// written at once, as before. What says that more are coming is the
// connection's queue (queue.queued counts the text frames handed to melody
// and not yet written, the one being written included): melody's write
// goroutine writes them one after another, each through gorilla/websocket's
// WriteMessage, which ends in one Write here.
//
// Centrifugo does the same for its clients, and more: up to 16 messages in
// one frame. Measured with nochat bench, one write per frame was most of
// NoChat's CPU under load (BENCHMARKS.md).
type coalesced struct {
	net.Conn
	more   func() bool // whether another frame is already on its way
	client *client     // whose socket this is (clientOf); nil in tests

	mu  sync.Mutex // gorilla writes under its own lock; Close may come from anywhere
	buf *[]byte    // frames held back, from coalescePool; nil when none

	// melody sets a write deadline before every frame, and each costs the
	// runtime's timer lock: one per write to the connection is enough, and
	// none when it moved later by less than deadlineSlack.
	deadline time.Time // the latest asked for
	applied  time.Time // the one the connection has
}

// deadlineSlack is how much earlier than asked a write may time out: a
// fraction of a second, next to the seconds of the slow-client bound.
const deadlineSlack = 250 * time.Millisecond

// coalesceLimit is the most held back before writing anyway: a few TCP
// segments, a dozen or more chat frames. A connection holds a buffer only
// while it has a backlog, so an idle one costs nothing.
const coalesceLimit = 8 << 10

var coalescePool = sync.Pool{New: func() any {
	b := make([]byte, 0, coalesceLimit)
	return &b
}}

func newCoalesced(conn net.Conn, more func() bool) *coalesced {
	return &coalesced{Conn: conn, more: more}
}

// Write writes p now, with what was held back before it, unless more
// frames are on their way and there is room to hold p too.
func (c *coalesced) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	more := c.more()
	if c.buf == nil && (!more || len(p) >= coalesceLimit) {
		return c.writeNow(p) // the common case when not busy: no copy
	}
	if c.buf == nil {
		c.buf = coalescePool.Get().(*[]byte)
	}
	if len(*c.buf)+len(p) > coalesceLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if !more || len(p) >= coalesceLimit {
			return c.writeNow(p)
		}
		c.buf = coalescePool.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if more {
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes what was held back, if anything: its queue calls it when no
// frame follows the last one written.
func (c *coalesced) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked() // an error ends the session through the next read or write
}

// flushLocked writes what was held back and returns the buffer to the pool.
func (c *coalesced) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.writeNow(*b)
	*b = (*b)[:0]
	coalescePool.Put(b)
	return err
}

// writeNow writes p to the connection, under the latest deadline.
func (c *coalesced) writeNow(p []byte) (int, error) {
	if !c.deadline.Equal(c.applied) {
		if d := c.deadline.Sub(c.applied); c.deadline.IsZero() || c.applied.IsZero() || d < 0 || d >= deadlineSlack {
			if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
				return 0, err
			}
			c.applied = c.deadline
		}
	}
	return c.Conn.Write(p)
}

// SetWriteDeadline sets the deadline of the next write to the connection.
func (c *coalesced) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

// SetDeadline sets the read deadline now, and the write deadline as
// SetWriteDeadline does.
func (c *coalesced) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close writes what was held back, if no write is under way, and closes
// the connection. A write under way may be blocked on a client that does
// not read: closing must not wait for it (the close is what ends it).
func (c *coalesced) Close() error {
	if c.mu.TryLock() {
		c.flushLocked() // under the deadline of the write that held it back
		c.mu.Unlock()
	}
	return c.Conn.Close()
}
