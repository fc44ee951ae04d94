package chat

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"
)

// queue is one connection's outgoing queue, and the only place its frames
// are counted. Frames go to melody's per-session buffer, which is small
// (melodyBuffer frames, allocated with the session and held for its life:
// at thousands of idle connections its size is most of their memory) and
// drops a frame silently when it is full. So frames that find it full wait
// here, in order, in wait, which holds memory only while there is a
// backlog; melody's sent handler (wrote) moves them on as frames leave.
//
// Budgets: a message is handed over while fewer than streamLimit frames
// are outstanding (melody's and ours together, of every kind); past that, the broadcaster takes the
// connection out of the live set and feeds it from the database instead
// (stream reports false). Frames the client must not miss (acks, errors,
// hello, presence, deleted) wait whatever the stream's budget, up to
// maxOwed. Two of melody's slots stay free for close frames, which melody
// does not count as sent.
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
	waitN     atomic.Int32  // len(wait), read without mu
	sent      atomic.Int64  // frames written to the client
	lastWrite atomic.Int64  // Unix nanoseconds of the last frame written
	drained   chan struct{} // capacity 1: a frame was written

	melodyLimit int32 // frames melody's buffer takes: melodyBuffer less two for close frames
	streamLimit int32 // frames outstanding, melody's and wait's, past which no message is handed over

	mu       sync.Mutex
	wait     [][]byte // frames waiting for room in melody's buffer, in order; nil when none
	closeMsg []byte   // a close frame to send once wait is empty; nil for none
}

// melodyBuffer is the frames melody's buffer holds per session; Options'
// SessionBuffer (the stream's budget and more) may be larger, the rest
// waiting in queue.wait only while a client has a backlog.
const melodyBuffer = 16

// stream hands over a message in the connection's protocol, if it fits the
// stream's budget. It reports false, writing nothing, when it would not.
// An entry with no form in the connection's protocol (a change, on
// echo-protocol) is passed over, as if handed over.
func (c *queue) stream(f *frames) bool {
	b := f.forProtocol(c.proto)
	if b == nil {
		return true
	}
	if c.waitN.Load() == 0 && c.write(b, c.melodyLimit) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued.Load()+int32(len(c.wait)) >= c.streamLimit {
		return false
	}
	c.enqueueLocked(b)
	return true
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
func (c *queue) backlog() bool { return c.queued.Load() > 1 || c.waitN.Load() > 0 }

// maxOwed bounds the frames that may wait for a client (a few KiB each at
// most, most a hundred bytes). A client that far behind on its acks is not
// reading; one sending at the rate limit never comes near.
const maxOwed = 1024

// send hands the client a frame it must get: at once if there is room,
// else after the frames waiting already. It reports false only when the
// client is owed too much to keep up.
func (c *queue) send(b []byte) bool {
	if c.waitN.Load() == 0 && c.write(b, c.melodyLimit) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.wait) >= maxOwed {
		return false
	}
	c.enqueueLocked(b)
	return true
}

// enqueueLocked puts b at the end of wait.
func (c *queue) enqueueLocked(b []byte) {
	c.wait = append(c.wait, b)
	c.waitN.Add(1)
	// Every frame queued may have left between the caller's write and
	// waitN counting this one, their sent handlers seeing nothing waiting:
	// move on now. A frame leaving later sees waitN and moves them on.
	c.payLocked()
}

// payOwed moves waiting frames to melody while there is room.
func (c *queue) payOwed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.payLocked()
}

func (c *queue) payLocked() {
	for len(c.wait) > 0 && c.write(c.wait[0], c.melodyLimit) {
		c.wait[0] = nil
		c.wait = c.wait[1:]
		c.waitN.Add(-1)
	}
	if len(c.wait) == 0 {
		c.wait = nil // the backlog's memory goes with it
		if c.closeMsg != nil {
			c.s.CloseWithMsg(c.closeMsg)
			c.closeMsg = nil
		}
	}
}

// closeAfter sends the close frame msg after the frames waiting.
func (c *queue) closeAfter(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.wait) > 0 {
		c.closeMsg = msg
		return
	}
	c.s.CloseWithMsg(msg)
}

// wrote is called by melody's sent handler after a frame reached the socket.
func (c *queue) wrote() {
	// The clock costs more than the rest of this: while frames flow, every
	// 16th write tells a stalled client apart well enough.
	left := c.queued.Add(-1)
	if n := c.sent.Add(1); left == 0 || n%16 == 0 {
		c.lastWrite.Store(time.Now().UnixNano())
	}
	if c.waitN.Load() > 0 {
		c.payOwed()
	}
	select {
	case c.drained <- struct{}{}:
	default:
	}
}
