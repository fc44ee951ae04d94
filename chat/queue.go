package chat

import (
	"bytes"
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
	// batch: the client reads a "messages" frame, several messages in one
	// (nochat.v1 with ?batch=1): consecutive messages waiting go as one.
	batch bool

	mu       sync.Mutex
	wait     [][]byte // frames waiting for room in melody's buffer, in order, from head on; nil when none
	head     int      // wait's frames before head are paid (see paidLocked)
	closeMsg []byte   // a close frame to send once nothing waits; nil for none
	// draining: the session's write goroutine is writing frames of wait
	// itself (drain), so none goes to melody meanwhile.
	draining bool
	// batches are the buffers of the "messages" frames handed to melody
	// and not yet written, in order: each goes back to batchPool once
	// written (recycle). nil when none.
	batches []*[]byte

	// run gathers, with batch, the frames of the batch the broadcaster is
	// delivering, for streamRun; only the broadcaster touches it.
	run []*frames
	// conn is the connection melody writes through, which may hold a
	// frame back (coalesced); nil for a socket NoChat did not take over.
	conn    *coalesced
	directs atomic.Int64 // of the frames sent, those written directly
	drains  atomic.Int64 // of the frames sent, those drain wrote
}

// melodyBuffer is the frames melody's buffer holds per session; Options'
// SessionBuffer (the stream's budget and more) may be larger, the rest
// waiting in queue.wait only while a client has a backlog.
const melodyBuffer = 16

// stream hands over a message in the connection's protocol, if it fits the
// stream's budget. It reports false, writing nothing, when it would not.
// An entry with no form in the connection's protocol (a change, on
// echo-protocol) is passed over, as if handed over. direct lets the caller
// write it itself when nothing is on its way to the client (see direct).
func (c *queue) stream(f *frames, direct bool) bool {
	b := f.forProtocol(c.proto)
	if b == nil {
		return true
	}
	if c.waitN.Load() == 0 && (direct && c.direct(f.wire(c.proto)) || c.write(b, c.melodyLimit)) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued.Load()+int32(c.waiting()) >= c.streamLimit {
		return false
	}
	c.enqueueLocked(b)
	return true
}

// streamRun hands over run, in order, as stream would each frame, but
// waiting together so that the messages among them leave as one
// "messages" frame (batch). It returns how many it handed over: all, or
// those before the first that would not fit the stream's budget.
func (c *queue) streamRun(run []*frames) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.payLocked()
	for i, f := range run {
		if c.queued.Load()+int32(c.waiting()) >= c.streamLimit {
			return i
		}
		c.wait = append(c.waitOrNew(), f.forProtocol(c.proto))
		c.waitN.Add(1)
	}
	return len(run)
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

// direct writes frame, a whole WebSocket frame, to the socket at once, if
// nothing is on its way to the client before it (coalesced.writeDirect):
// the frame then costs no hand-over to melody's write goroutine. It
// reports false, having written nothing, otherwise.
//
// The broadcaster writes directly only while the chat is quiet (a commit
// of one message, nothing else waiting for the broadcaster): each direct
// write is a system call of its own, on the broadcaster's goroutine. Under
// load, frames handed to melody are written by the sessions' goroutines on
// every core, and those that wait behind one another leave together
// (coalesced): in a burst, writing directly delivered a quarter of what
// melody did.
func (c *queue) direct(frame []byte) bool {
	if frame == nil || c.conn == nil || c.queued.Load() != 0 || !c.conn.writeDirect(frame) {
		return false
	}
	c.sent.Add(1)
	c.directs.Add(1)
	c.lastWrite.Store(time.Now().UnixNano())
	select {
	case c.drained <- struct{}{}:
	default:
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
	if c.waiting() >= maxOwed {
		return false
	}
	c.enqueueLocked(b)
	return true
}

// enqueueLocked puts b at the end of wait.
func (c *queue) enqueueLocked(b []byte) {
	c.wait = append(c.waitOrNew(), b)
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
	if c.draining {
		return // drain writes them, in order, and the close frame after them
	}
	limit := c.melodyLimit
	if c.inline() {
		// None while melody has one (drain follows it), else one, to
		// wake the session's write goroutine, which writes the rest.
		limit = 1
	}
	for c.waiting() > 0 && c.queued.Load() < limit { // else no batch is built for nothing
		rest := c.wait[c.head:]
		b, n := rest[0], 1
		var buf *[]byte
		if c.batch {
			b, n, buf = batchMessages(rest)
		}
		if !c.write(b, c.melodyLimit) {
			putBatch(buf)
			break
		}
		if buf != nil {
			// Its sent handler waits for mu: recycle finds it here.
			c.batches = append(c.batches, buf)
		}
		c.paidLocked(n)
	}
	c.closeIfDoneLocked()
}

// waiting is how many frames wait, under mu.
func (c *queue) waiting() int { return len(c.wait) - c.head }

// paidLocked takes the first n frames waiting off wait, handed to melody.
// The array serves the whole backlog: sliced from the front it would be
// allocated again every few frames, and moving what is left to the front
// at every frame paid would cost the backlog's length each time. What is
// left moves once the frames paid outnumber it, a move of at most one
// frame for each paid since the last. An emptied array goes back to
// waitPool: the backlog's memory goes with it.
func (c *queue) paidLocked(n int) {
	clear(c.wait[c.head : c.head+n])
	c.head += n
	c.waitN.Add(-int32(n))
	switch left := c.waiting(); {
	case left == 0:
		putWait(c.wait)
		c.wait, c.head = nil, 0
	case c.head >= left:
		copy(c.wait, c.wait[c.head:])
		clear(c.wait[left:])
		c.wait, c.head = c.wait[:left], 0
	}
}

// waitOrNew returns wait, or while there is no backlog an empty array
// from waitPool to start one in.
func (c *queue) waitOrNew() [][]byte {
	if c.wait != nil {
		return c.wait
	}
	return waitPool.Get().([][]byte)[:0]
}

// waitPool holds the arrays of backlogs that ended: a busy chat's clients
// start one and end it many times a second, and the arrays were a third of
// what a burst allocated once the frames were pooled.
var waitPool = sync.Pool{New: func() any { return make([][]byte, 0, 4) }}

// putWait gives w, emptied, to waitPool, unless a long backlog made it
// large.
func putWait(w [][]byte) {
	if cap(w) > 4*batchStreamLimit {
		return
	}
	waitPool.Put(w[:0]) // its header is boxed: 24 bytes, next to the array it keeps
}

// Frames written in line. A frame handed to melody costs a hand-over
// through its session's channel, a wake-up of its write goroutine, a clock
// reading for the write's deadline, a copy into gorilla's buffer and the
// sent handler, for each frame; on echo-protocol, where every message is a
// frame of its own, that was most of what a burst cost the server beyond
// the system calls coalesced saves. So on a connection NoChat took over
// (conn), the frames that find melody's buffer full are not handed to it
// as it empties: once melody has written the last frame it holds, the same
// goroutine, still in melody's sent handler and so between frames, writes
// what waits (drain), in one write for as many frames as coalesceLimit
// holds. The client reads the same frames, one per message, in the same
// order. Melody's buffer still takes frames while nothing waits: a
// broadcaster handing a quiet chat's few frames to a thousand clients
// costs least that way (making frames wait sooner, at two in melody's
// buffer, raised fan-out's CPU and p99 by a few percent, for no more in a
// burst). "messages" frames (batch) go through melody: one carries many
// messages.

// inline reports whether drain writes the connection's waiting frames.
func (c *queue) inline() bool { return c.conn != nil && !c.batch }

// drain writes the frames waiting for the client, on melody's write
// goroutine, once melody has none left (wrote, with left 0). Frames
// queued meanwhile wait behind them (waitN counts those being written,
// and draining keeps payLocked from handing any to melody), and are
// written in turn. A write that fails has closed the connection: its
// session ends, and the frames left go with it.
func (c *queue) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.waiting() > 0 && c.queued.Load() == 0 {
		n := c.waiting()
		// Appends while unlocked may move wait to a larger array; this
		// one keeps these frames until they are paid, below.
		frames := c.wait[c.head : c.head+n]
		c.draining = true
		c.mu.Unlock()
		err := c.conn.writeFrames(frames, c.noteWrite)
		c.mu.Lock()
		c.draining = false
		if err != nil {
			return
		}
		c.paidLocked(n)
		c.sent.Add(int64(n))
		c.drains.Add(int64(n))
	}
	c.closeIfDoneLocked()
}

// noteWrite notes that frames reached the socket just now. A backlog
// written in line notes each of its writes: a client reading a long one
// slowly is reading, and the catch-up's stall check (and the admin page's
// last activity) must see it so.
func (c *queue) noteWrite() { c.lastWrite.Store(time.Now().UnixNano()) }

// closeIfDoneLocked sends the close frame closeAfter kept, once no frame
// waits before it.
func (c *queue) closeIfDoneLocked() {
	if c.waiting() == 0 && c.closeMsg != nil {
		c.s.CloseWithMsg(c.closeMsg)
		c.closeMsg = nil
	}
}

// closeAfter sends the close frame msg after the frames waiting.
func (c *queue) closeAfter(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting() > 0 {
		c.closeMsg = msg
		return
	}
	c.s.CloseWithMsg(msg)
}

// wrote is called by melody's sent handler after frame b reached the socket.
func (c *queue) wrote(b []byte) {
	// The clock costs more than the rest of this: while frames flow, every
	// 16th write tells a stalled client apart well enough.
	left := c.queued.Add(-1)
	if n := c.sent.Add(1); left == 0 || n%16 == 0 {
		c.lastWrite.Store(time.Now().UnixNano())
	}
	if c.batch {
		c.recycle(b) // before payOwed, which may build the next in it
	}
	if c.waitN.Load() > 0 {
		switch {
		case !c.inline():
			c.payOwed()
		case left == 0:
			c.drain()
		}
	}
	if c.conn != nil && c.queued.Load() == 0 && c.waitN.Load() == 0 {
		// Nothing follows this frame: what the connection held back
		// leaves now. It holds a frame while waitN counts frames being
		// handed to melody (payLocked counts them out once melody has
		// them), and one of those may have been this frame itself.
		c.conn.flush()
	}
	select {
	case c.drained <- struct{}{}:
	default:
	}
}

// Frame coalescing: when messages wait for a client that reads "messages"
// frames, the run of them at the head of its queue goes as one frame,
// {"type":"messages","data":[...]}, each element what a "message" frame's
// data is. A client with a backlog then costs the server, and itself, one
// frame for many messages instead of one each, as Centrifugo's clients do
// (up to 16 to a frame there). Other frames (acks, errors...) keep their
// place between the runs.

var (
	messagePrefix  = []byte(`{"type":"message","data":`)
	messagesPrefix = []byte(`{"type":"messages","data":[`)
)

// batchStreamLimit is the stream's budget for a client that reads
// "messages" frames: a whole commit's messages (db.DefaultMaxBatch) and
// more may wait for it, references to frames every client shares, and go
// in a few frames, where sending them one by one would fall behind.
const batchStreamLimit = 512

// Bounds of one "messages" frame: a few TCP segments, a screenful.
const (
	maxBatchMessages = 64
	maxBatchBytes    = 16 << 10
)

// batchMessages returns the frame to send for the head of wait, and how
// many of wait's frames it carries: wait[0] alone unless it and those
// after it are message frames. A frame it built lies in buf, from
// batchPool; buf is nil for wait[0] alone.
func batchMessages(wait [][]byte) (frame []byte, n int, buf *[]byte) {
	size := len(messagesPrefix) + 2
	for n < len(wait) && n < maxBatchMessages && bytes.HasPrefix(wait[n], messagePrefix) {
		more := len(wait[n]) - len(messagePrefix)
		if n > 0 && size+more > maxBatchBytes {
			break
		}
		size += more
		n++
	}
	if n < 2 {
		return wait[0], 1, nil
	}
	buf = batchPool.Get().(*[]byte)
	b := append(*buf, messagesPrefix...) // size fits: the pool's buffers are maxBatchBytes
	for i, f := range wait[:n] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f[len(messagePrefix):len(f)-1]...) // the data object
	}
	b = append(b, "]}"...)
	*buf = b
	return b, n, buf
}

// batchPool holds the buffers "messages" frames are built in. In a burst
// they were most of the bytes the server allocated (three fifths), and so
// most of what its garbage collector had to keep up with; each is used
// again once its frame is written.
var batchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, maxBatchBytes)
	return &b
}}

// putBatch gives buf, if any, back to batchPool. A frame of two or more
// messages is at most maxBatchBytes (one longer message goes alone, as its
// own frame), so buffers keep their size; the bound is a safeguard.
func putBatch(buf *[]byte) {
	if buf == nil || cap(*buf) > 4*maxBatchBytes {
		return
	}
	*buf = (*buf)[:0]
	batchPool.Put(buf)
}

// recycle gives the buffer of b, a frame just written, back to batchPool
// if b is the "messages" frame handed to melody first: melody writes a
// session's frames in order.
func (c *queue) recycle(b []byte) {
	if !bytes.HasPrefix(b, messagesPrefix) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.batches) == 0 {
		return
	}
	buf := c.batches[0]
	if &(*buf)[0] != &b[0] {
		// Not the frame expected (which cannot be): let the collector
		// have them all rather than hand out a buffer still in use.
		c.batches = nil
		return
	}
	c.batches[0] = nil
	c.batches = c.batches[1:]
	if len(c.batches) == 0 {
		c.batches = nil
	}
	putBatch(buf)
}
