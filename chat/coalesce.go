package chat

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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
	// none when it moved later by less than deadlineSlack. The deadline
	// asked for has a lock of its own: gorilla sets one before a control
	// frame it writes from another goroutine, which must not wait for a
	// write under way to do so (see lock).
	dmu      sync.Mutex
	deadline time.Time // the latest asked for, under dmu
	applied  time.Time // the one the connection has, under mu

	// raw is the socket itself, for writes that must not wait (writeNow
	// from the broadcaster, see direct); nil when the connection is not a
	// plain TCP socket (TLS), which then has melody's writer only.
	raw syscall.RawConn
	// frameLeft is how much of the frame gorilla is writing has yet to come
	// through Write (a frame larger than its buffer comes in two writes):
	// a direct write goes only between frames. -1 when the bytes did not
	// read as server frames, or after a close frame: nothing of NoChat's
	// own then. Written under mu, by gorilla's writes alone, which its own
	// lock keeps one at a time: a write of gorilla's may read it unlocked.
	frameLeft atomic.Int32
	// framed: the handshake's answer went, and what goes through now is
	// frames, which track follows (enableDirect).
	framed bool
	// wait bounds the write of what is left of a direct write the socket
	// took only part of: the slow-client bound. stalled is called when it
	// ran out, before the connection is closed for it.
	wait    time.Duration
	stalled func()
	tried   try // tryWrite's, under mu
}

// deadlineSlack is how much earlier than asked a write may time out: a
// fraction of a second, next to the seconds of the slow-client bound.
const deadlineSlack = 250 * time.Millisecond

// coalesceLimit is the most held back before writing anyway: a few TCP
// segments, a hundred or more chat frames, or a whole "messages" frame
// (maxBatchBytes) with the acks around it, which at half this took two
// system calls. A connection holds a buffer only while it has a backlog,
// so an idle one costs nothing.
const coalesceLimit = 2 * maxBatchBytes

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
	if !c.lock(p) {
		return len(p), nil // dropped: see lock
	}
	defer c.mu.Unlock()
	if c.framed {
		c.track(p)
	}
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

// controlWait bounds how long a control frame waits for a write under
// way: gorilla's own wait for its write lock, before it gives one up.
const controlWait = time.Second

// lock takes mu for a write of p, and reports false when p is a control
// frame that waited too long for it, to be dropped. gorilla writes control
// frames (a pong, the answer to a close frame, a ping over TLS) from the
// goroutine that reads, or the one that pings, holding only its own lock,
// which a backlog written in line (writeFrames) does not hold: such a frame
// may find the connection busy with a slow client for as long as the
// slow-client bound. It waits at most controlWait, or until its deadline
// has passed, and is then dropped, as gorilla drops one its own lock kept
// waiting (its ping handler ignores that). Written past its deadline, it
// would fail, and a TLS connection never recovers from a write that timed
// out.
func (c *coalesced) lock(p []byte) bool {
	if c.mu.TryLock() {
		return true
	}
	if !c.framed || c.frameLeft.Load() != 0 || !isControl(p) {
		c.mu.Lock()
		return true
	}
	limit := time.Now().Add(controlWait)
	if d := c.writeDeadline(); !d.IsZero() && d.Before(limit) {
		limit = d
	}
	for !c.mu.TryLock() {
		if time.Now().After(limit) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	if time.Now().After(limit) {
		c.mu.Unlock()
		return false
	}
	return true
}

// isControl reports whether p is one whole control frame of a server's.
func isControl(p []byte) bool {
	n, ok := frameSize(p)
	return ok && n == len(p) && p[0]&0x08 != 0
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
	return c.writeBy(p, c.writeDeadline())
}

// writeBy writes p to the connection under deadline t.
func (c *coalesced) writeBy(p []byte, t time.Time) (int, error) {
	if !t.Equal(c.applied) {
		if d := t.Sub(c.applied); t.IsZero() || c.applied.IsZero() || d < 0 || d >= deadlineSlack {
			if err := c.Conn.SetWriteDeadline(t); err != nil {
				return 0, err
			}
			c.applied = t
		}
	}
	return c.Conn.Write(p)
}

// SetWriteDeadline sets the deadline of the next write to the connection.
func (c *coalesced) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.deadline = t
	return nil
}

// writeDeadline is the deadline last asked for.
func (c *coalesced) writeDeadline() time.Time {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.deadline
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

// Direct writes. A frame handed to melody costs a wake-up of the session's
// write goroutine, a copy into gorilla's buffer and melody's sent handler;
// for a connection with nothing on its way, the broadcaster can instead
// write the frame, encoded once for every client (frames.wire), itself,
// with one system call that never waits. With a thousand clients that is a
// thousand goroutine wake-ups a message fewer. Whatever does not fit at
// once (a client behind) goes the usual way, through melody.

// enableDirect lets the connection take direct writes, if it is a socket
// (not TLS, whose bytes on the socket are not the frames), once the
// handshake is through: what it writes from then on is frames. wait bounds
// the write of what the socket did not take at once; stalled (may be nil)
// hears when a client did not take it in that time.
//
// wait and stalled hold for every connection, TLS too: they also bound
// writeFrames.
func (c *coalesced) enableDirect(wait time.Duration, stalled func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.framed, c.wait, c.stalled = true, wait, stalled
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	c.tried.init()
}

// writeFrames writes payloads, each as a text frame of its own, after what
// was held back, in as few writes as coalesceLimit allows: the frames of a
// backlog written by the session's write goroutine itself, rather than
// handed to melody one at a time (see queue.drain). It is called between
// melody's frames, never inside one. Each write has the slow-client bound
// of its own, as each of melody's frames has, and the connection is free
// between two (for a control frame gorilla writes meanwhile: a pong). A
// write that fails, or that the client does not take in time, closes the
// connection, as melody's own would end the session. wrote, if not nil,
// hears of each write that went through.
func (c *coalesced) writeFrames(payloads [][]byte, wrote func()) error {
	for len(payloads) > 0 {
		var err error
		if payloads, err = c.writeSome(payloads); err != nil {
			return err
		}
		if wrote != nil {
			wrote()
		}
	}
	return nil
}

// writeSome writes, in one write, what was held back and the frames of
// payloads that fit coalesceLimit after it (at least one when nothing
// was), and returns the rest.
func (c *coalesced) writeSome(payloads [][]byte) (rest [][]byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frameLeft.Load() != 0 {
		return nil, errAfterClose // after a close frame: nothing may follow it
	}
	b := c.buf
	if b == nil {
		b = coalescePool.Get().(*[]byte)
	}
	c.buf = nil
	n := 0
	for _, p := range payloads {
		if len(*b) > 0 && len(*b)+maxHeader+len(p) > coalesceLimit {
			break
		}
		*b = append(appendHeader(*b, len(p)), p...)
		n++
	}
	// n is 0 only when what was held back left no room for the first
	// frame: what was held back goes alone, the frames with the next write.
	// (A frame larger than the buffer goes whole, in a buffer grown for it.)
	var deadline time.Time
	if c.wait > 0 {
		deadline = time.Now().Add(c.wait)
	} else {
		deadline = c.writeDeadline()
	}
	_, err = c.writeBy(*b, deadline)
	if cap(*b) == coalesceLimit { // a frame longer than that grew it: let it go
		*b = (*b)[:0]
		coalescePool.Put(b)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && c.stalled != nil {
			c.stalled()
		}
		c.Conn.Close() // its reader ends the session
		return nil, err
	}
	return payloads[n:], nil
}

// errAfterClose is writeFrames' refusal to write after a close frame.
var errAfterClose = errors.New("a close frame was written: nothing may follow it")

// writeDirect writes frame, a whole WebSocket frame, from the caller's
// goroutine, if the socket takes it without waiting and nothing else is on
// its way through the connection (gorilla in the middle of a frame, bytes
// held back). It reports false, having written nothing, when not: the
// caller hands the frame to melody instead. If the socket takes only part
// of it, the rest is written before anything else, by a goroutine that may
// wait for the client.
func (c *coalesced) writeDirect(frame []byte) bool {
	if !c.mu.TryLock() { // a write under way, perhaps blocked
		return false
	}
	defer c.mu.Unlock()
	if c.raw == nil || c.buf != nil || c.frameLeft.Load() != 0 {
		return false
	}
	n, err := c.tryWrite(frame)
	if errors.Is(err, os.ErrDeadlineExceeded) && !c.applied.IsZero() {
		// The deadline of melody's last write has passed since, and the
		// socket refuses every write after it: a write that never waits
		// needs none (writeNow sets melody's again for its next write).
		if c.Conn.SetWriteDeadline(time.Time{}) == nil {
			c.applied = time.Time{}
			n, err = c.tryWrite(frame)
		}
	}
	if err != nil || n <= 0 {
		return false // it would wait (EAGAIN), or the socket is gone: melody's writer finds out
	}
	if n < len(frame) {
		b := coalescePool.Get().(*[]byte)
		*b = append(*b, frame[n:]...)
		c.buf = b
		go c.flushRest()
	}
	return true
}

// tryWrite writes what of p the socket takes without waiting.
func (c *coalesced) tryWrite(p []byte) (n int, err error) {
	c.tried.p = p
	err = c.raw.Write(c.tried.write)
	n = c.tried.n
	c.tried = try{write: c.tried.write}
	return n, err
}

// try is a direct write's system call, made once per connection: a
// closure made for each write would be two allocations a recipient of
// every message (the closure and what it sets).
type try struct {
	write func(fd uintptr) bool // writes p, sets n
	p     []byte
	n     int
}

func (t *try) init() {
	t.write = func(fd uintptr) bool {
		t.n, _ = syscall.Write(int(fd), t.p)
		return true // one try: never wait for the socket here
	}
}

// flushRest writes the rest of a direct write, unless a write of melody's
// took it along first; a client that does not take it within the
// slow-client bound loses its connection (and resumes from where it got).
func (c *coalesced) flushRest() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return
	}
	c.SetWriteDeadline(time.Now().Add(c.wait))
	err := c.flushLocked()
	if err == nil {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && c.stalled != nil {
		c.stalled()
	}
	c.Conn.Close() // its reader ends the session
}

// track follows the frames gorilla writes through p, so that a direct
// write never lands inside one.
func (c *coalesced) track(p []byte) {
	left := int(c.frameLeft.Load())
	defer func() { c.frameLeft.Store(int32(left)) }()
	for len(p) > 0 && left >= 0 {
		if left == 0 {
			n, ok := frameSize(p)
			if !ok || p[0]&0x0f == closeOpcode { // nothing may follow a close frame
				left = -1
				return
			}
			left = n
		}
		k := min(left, len(p))
		left -= k
		p = p[k:]
	}
}

// closeOpcode is a close frame's opcode (RFC 6455, 5.2).
const closeOpcode = 0x8

// frameSize is the size, header included, of the server frame (unmasked)
// that b begins with; false when b does not begin with a whole header of one.
func frameSize(b []byte) (int, bool) {
	if len(b) < 2 || b[1]&0x80 != 0 {
		return 0, false
	}
	switch n := int(b[1] & 0x7f); n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		return 4 + int(binary.BigEndian.Uint16(b[2:])), true
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u > 1<<30 { // far beyond any frame NoChat sends; an int on 32-bit ARM
			return 0, false
		}
		return 10 + int(u), true
	default:
		return 2 + n, true
	}
}

// textFrame returns p as a server's text frame (final, unmasked), and p's
// place within it.
func textFrame(p []byte) (frame, payload []byte) {
	frame = appendHeader(make([]byte, 0, maxHeader+len(p)), len(p))
	h := len(frame)
	frame = append(frame, p...)
	return frame, frame[h:]
}

// maxHeader is the longest header of a server frame.
const maxHeader = 10

// appendHeader appends the header of a server's text frame (final,
// unmasked) of n bytes.
func appendHeader(b []byte, n int) []byte {
	switch {
	case n > 0xffff:
		b = append(b, 0x81, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	case n > 125:
		b = append(b, 0x81, 126)
		return binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		return append(b, 0x81, byte(n))
	}
}
