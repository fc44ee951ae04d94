package chat

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"nochat/db"
)

// FlushErrors writes the error log's changes now, as the flusher does once
// a second, so a test need not wait for its tick.
func FlushErrors(h *Hub) error { return h.errors.flush(context.Background()) }

// ErrorEntries is how many entries the error log holds in memory.
func ErrorEntries(h *Hub) int {
	h.errors.mu.Lock()
	defer h.errors.mu.Unlock()
	return len(h.errors.entries)
}

// ErrorLogSize is the most entries the error log keeps.
const ErrorLogSize = errorLogSize

// BreakErrorSaving makes the error log's next save call f first, as a
// fault the flusher must survive.
func BreakErrorSaving(h *Hub, f func()) {
	h.errors.mu.Lock()
	defer h.errors.mu.Unlock()
	save := h.errors.save
	var once sync.Once
	h.errors.save = func(ctx context.Context, es []db.ErrorEntry, keep int) error {
		once.Do(f)
		return save(ctx, es, keep)
	}
}

// OnBroadcaster runs f on the broadcaster goroutine, as its operations run.
func OnBroadcaster(h *Hub, f func()) bool { return h.b.send(opRead{f}) }

// HoldSeries takes the dashboard series' lock, as a dashboard reading it
// does, until release is called.
func HoldSeries(h *Hub) (release func()) {
	h.series.mu.Lock()
	return h.series.mu.Unlock
}

// ConnectionsLater is the connection count the dashboard's chart shows for
// a later minute with no events in it.
func ConnectionsLater(h *Hub) int64 {
	points := h.series.snapshot(time.Now().Add(time.Minute)).Connections
	return points[len(points)-1]
}

// PushDropped is how many messages notified no one because the queue of
// messages to notify of was full.
func PushDropped(h *Hub) int64 { return h.pushDropped.Load() }

// NotifyQueue is how many messages may wait to be notified of.
const NotifyQueue = notifyQueue

// WhileJoining runs f as each socket is about to join the broadcaster,
// once ServeWS has let it in.
func WhileJoining(h *Hub, f func()) { h.joining = f }

// Behind is how many connections are out of the live set: catching up,
// or waiting in ahead.
func Behind(h *Hub) (n int) {
	h.b.read(func() { n = h.b.behind() })
	return n
}

// WhileCommitting makes f run between each commit and its hand-over to
// the broadcaster. Set it before anything is sent.
func WhileCommitting(h *Hub, f func()) { h.committing = f }

// HandOverCounted hands frame to the one connection's melody as payLocked
// does when another goroutine pays a waiting frame: counted as waiting
// (waitN) until melody has written it. It returns once the frame left
// melody and is counted out.
func HandOverCounted(h *Hub, frame []byte) bool {
	var c *client
	h.b.read(func() {
		for cl := range h.b.conns {
			c = cl
		}
	})
	if c == nil {
		return false
	}
	c.queue.mu.Lock()
	defer c.queue.mu.Unlock()
	c.wait = append(c.waitOrNew(), frame)
	c.waitN.Add(1)
	sent := c.sent.Load()
	if !c.write(frame, c.melodyLimit) {
		return false
	}
	for c.sent.Load() == sent { // written, its sent handler begun
		time.Sleep(time.Millisecond)
	}
	c.paidLocked(1)
	return true
}

// DirectWrites counts the frames written to the hub's connections directly
// (queue.direct), not through melody.
func DirectWrites(h *Hub) int64 {
	return framesSent(h, func(c *client) *atomic.Int64 { return &c.directs })
}

// InlineWrites counts the frames the hub's connections' write goroutines
// wrote themselves (queue.drain), not through melody.
func InlineWrites(h *Hub) int64 {
	return framesSent(h, func(c *client) *atomic.Int64 { return &c.drains })
}

// framesSent sums a count of frames sent over the hub's connections.
func framesSent(h *Hub, count func(*client) *atomic.Int64) int64 {
	var n int64
	h.b.read(func() {
		for c := range h.b.conns {
			n += count(c).Load()
		}
	})
	return n
}

// WaitingBytes is the bytes of the frames waiting in the hub's
// connections' queues (queue.wait), not yet handed to melody.
func WaitingBytes(h *Hub) (n int) {
	var cs []*client
	h.b.read(func() {
		for c := range h.b.conns {
			cs = append(cs, c)
		}
	})
	for _, c := range cs {
		c.queue.mu.Lock()
		for _, b := range c.wait[c.head:] {
			n += len(b)
		}
		c.queue.mu.Unlock()
	}
	return n
}

// SeededErrors is the errors of the last hour a series seeded with
// entries at now shows then.
func SeededErrors(entries []db.ErrorEntry, now time.Time) []int64 {
	var s series
	s.seedErrors(entries, now)
	return s.snapshot(now).Errors
}
