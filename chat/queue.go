package chat

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"
)

// queue is one connection's outgoing queue, and the only place its frames
// are counted. Frames go to melody's per-session buffer, which drops a frame
// silently when it is full; counting them here lets the broadcaster never
// hand over one that would not fit (stream), and take the connection out
// of the live set instead. Frames the client must not miss (acks, errors,
// hello, presence, deleted) that find the buffer full wait in owed, and go
// out in order as soon as there is room.
//
// Budgets, out of melody's buffer (see Hub.New): the message stream may
// fill streamLimit; acks, errors and presence may use the rest up to
// controlLimit; two slots stay free for close frames, which melody does not
// count as sent.
type queue struct {
	// What the broadcaster and melody's sent handler touch for every frame
	// comes first, in 56 bytes: one or two cache lines (the record is not
	// 64-byte aligned) instead of four. With a thousand clients, each
	// message visits every client's record once, and each line costs a miss.
	s     *melody.Session
	proto Protocol
	// queued counts the text frames handed to melody and not yet written to
	// the socket (melody's sent handler counts them down).
	queued    atomic.Int32
	owedN     atomic.Int32  // len(owed), read without owedMu
	sent      atomic.Int64  // frames written to the client
	lastWrite atomic.Int64  // Unix nanoseconds of the last frame written
	drained   chan struct{} // capacity 1: a frame was written

	streamLimit  int32
	controlLimit int32

	owedMu sync.Mutex
	owed   [][]byte
}

// stream hands over a message in the connection's protocol, if it fits the
// stream's budget. It reports false, writing nothing, when it would not.
// An entry with no form in the connection's protocol (a change, on
// echo-protocol) is passed over, as if handed over.
func (c *queue) stream(f *frames) bool {
	b := f.forProtocol(c.proto)
	if b == nil {
		return true
	}
	return c.write(b, c.streamLimit)
}

// write hands a text frame to melody if fewer than limit frames are queued.
// It reports false, writing nothing, when the frame would not fit.
func (c *queue) write(b []byte, limit int32) bool {
	if c.queued.Add(1) > limit {
		c.queued.Add(-1)
		return false
	}
	if err := c.s.Write(b); err != nil {
		c.queued.Add(-1)
		return false
	}
	return true
}

// backlog reports whether, while a frame is being written, more wait behind
// it (see coalesced).
func (c *queue) backlog() bool { return c.queued.Load() > 1 }

// maxOwed bounds the frames a client may be owed (a few KiB each at most,
// most a hundred bytes). A client that far behind on its acks is not
// reading; one sending at the rate limit never comes near.
const maxOwed = 1024

// send hands the client a frame it must get: at once if there is room,
// else after the frames it is owed already. It reports false only when the
// client is owed too much to keep up.
func (c *queue) send(b []byte) bool {
	c.owedMu.Lock()
	defer c.owedMu.Unlock()
	if len(c.owed) == 0 && c.write(b, c.controlLimit) {
		return true
	}
	if len(c.owed) >= maxOwed {
		return false
	}
	c.owed = append(c.owed, b)
	c.owedN.Add(1)
	// Every frame queued may have left between the write above and owedN
	// counting this one, their sent handlers seeing nothing owed: pay now.
	// A frame leaving later sees owedN and pays.
	c.payLocked()
	return true
}

// payOwed writes owed frames while there is room.
func (c *queue) payOwed() {
	c.owedMu.Lock()
	defer c.owedMu.Unlock()
	c.payLocked()
}

func (c *queue) payLocked() {
	for len(c.owed) > 0 && c.write(c.owed[0], c.controlLimit) {
		c.owed[0] = nil
		c.owed = c.owed[1:]
		c.owedN.Add(-1)
	}
}

// wrote is called by melody's sent handler after a frame reached the socket.
func (c *queue) wrote() {
	// The clock costs more than the rest of this: while frames flow, every
	// 16th write tells a stalled client apart well enough.
	left := c.queued.Add(-1)
	if n := c.sent.Add(1); left == 0 || n%16 == 0 {
		c.lastWrite.Store(time.Now().UnixNano())
	}
	if c.owedN.Load() > 0 {
		c.payOwed()
	}
	select {
	case c.drained <- struct{}{}:
	default:
	}
}
