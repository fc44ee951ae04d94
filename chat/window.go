package chat

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The replay window and catching up. The broadcaster keeps the newest
// encoded messages in memory, so that a client a little behind (a burst
// overran its buffer, or it resumes after a short drop) catches up without
// a database read. Bounded by count and by bytes: a few thousand ordinary
// messages, never more than recentMaxBytes.
const (
	recentSize     = 4096
	recentMaxBytes = 2 << 20
)

// window holds the newest messages, oldest first; every message with an id
// above floor is in it. Only the broadcaster changes it, under mu (change);
// catch-up readers read it under mu too (fetch).
type window struct {
	mu          sync.RWMutex
	recent      []*frames
	recentBytes int // bytes the frames in recent hold
	floor       int64
}

func (w *window) init(latestID int64) {
	w.floor = latestID
	w.recent = make([]*frames, 0, recentSize)
}

// change runs f, a change to the window, under mu. The lock is released by
// defer: the broadcaster survives a panic (apply), and must not leave the
// catch-up readers locked out.
func (w *window) change(f func(w *window)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

func (w *window) remember(f *frames) {
	w.recent = append(w.recent, f)
	w.recentBytes += f.size()
	drop := 0
	for len(w.recent)-drop > recentSize || (w.recentBytes > recentMaxBytes && len(w.recent)-drop > 1) {
		w.floor = w.recent[drop].id
		w.recentBytes -= w.recent[drop].size()
		w.recent[drop] = nil
		drop++
	}
	// Reslicing moves the start forward; append copies the live part to a
	// new array when the old one is used up: amortised O(1) a message.
	w.recent = w.recent[drop:]
}

// since returns the remembered messages with ids above after, and whether
// they are all the messages there are above after.
func (w *window) since(after int64) ([]*frames, bool) {
	if after < w.floor {
		return nil, false
	}
	return w.recent[w.index(after+1):], true
}

// index is where in recent the message with id is, or would be.
func (w *window) index(id int64) int {
	i, _ := slices.BinarySearchFunc(w.recent, id, func(f *frames, want int64) int { return cmp.Compare(f.id, want) })
	return i
}

// forget drops deleted messages' frames: their own and their changes',
// which the store deleted with them.
func (w *window) forget(msgs ...int64) {
	if len(msgs) == 0 {
		return
	}
	gone := make(map[int64]bool, len(msgs))
	for _, id := range msgs {
		gone[id] = true
	}
	start := w.index(slices.Min(msgs))
	w.keep(start, func(f *frames) bool { return !gone[f.msg] })
	// A reply to one says it is deleted, as the store's history does.
	for i, f := range w.recent[start:] {
		if gone[f.quote] && f.quote != 0 {
			g := f.quoteDeleted()
			w.recentBytes += g.size() - f.size()
			w.recent[start+i] = g
		}
	}
}

// keep keeps, of the frames from start on, those keep says.
func (w *window) keep(start int, keep func(*frames) bool) {
	kept := w.recent[:start]
	for _, f := range w.recent[start:] {
		if !keep(f) {
			w.recentBytes -= f.size()
			continue
		}
		kept = append(kept, f)
	}
	clear(w.recent[len(kept):])
	w.recent = kept
}

// dropBelow forgets the remembered messages with ids under below, and the
// changes to them (retention deleted those too). floor stays: every entry
// above it that the store still holds is remembered.
func (w *window) dropBelow(below int64) {
	i := w.index(below)
	for j := range w.recent[:i] {
		w.recentBytes -= w.recent[j].size()
		w.recent[j] = nil
	}
	w.recent = w.recent[i:]
	w.keep(0, func(f *frames) bool { return f.msg >= below })
}

// fetch returns up to n messages after the given id, from memory when they
// are recent, else from the database (until ctx ends).
func (h *Hub) fetch(ctx context.Context, after int64, n int) ([]*frames, error) {
	h.b.window.mu.RLock()
	recent, ok := h.b.window.since(after)
	if ok {
		recent = slices.Clone(recent[:min(n, len(recent))])
	}
	h.b.window.mu.RUnlock()
	if ok {
		return recent, nil
	}
	entries, err := h.store.LogAfter(ctx, after, n)
	if err != nil {
		return nil, err
	}
	// No further than the broadcaster has handed out: a message stored but
	// not yet delivered may follow a membership change not yet applied.
	published := h.b.published.Load()
	out := make([]*frames, 0, len(entries))
	for _, e := range entries {
		if e.ID() > published {
			break
		}
		out = append(out, encodeEntry(e))
	}
	return out, nil
}

// catchUp feeds a client that is out of the live set from the database, as
// fast as it reads, until it has every stored message; then it asks the
// broadcaster to let it rejoin. Memory stays bounded by the session buffer
// however far behind the client is. A client that makes no progress for
// SlowTimeout is disconnected with 1008 "too slow"; it resumes with after=.
func (h *Hub) catchUp(c *client, after int64) {
	defer func() {
		// A panic here would end the process. The client, out of the live
		// set, would get nothing more: close it with 1011, and it resumes.
		if v := recover(); v != nil {
			h.recordPanic(v, placeCatchUp, c.subject())
			c.closeWith(websocket.CloseInternalServerErr, "internal error")
		}
	}()
	// The client's reads end when it goes, not when the hub stops only: a
	// hundred clients that resumed far behind and left at once had their
	// reads wait their turn for the database's two read connections, and
	// keep it busy, for a minute after.
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	go func() {
		select {
		case <-c.gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	low := c.streamLimit / 2
	below, fetchMax := low, 0 // after a round cut at catchUpBytes, see below
	for ctx.Err() == nil {
		for c.queued.Load()+c.waitN.Load() > below {
			if !h.pause(c, tick.C, c.drained) { // the tick notices a client that stopped reading
				return
			}
			if stalled := time.Since(time.Unix(0, c.lastWrite.Load())); c.queued.Load() > 0 && stalled > h.opts.SlowTimeout {
				h.dropSlow(c, "read nothing for "+stalled.Round(time.Second).String()+" while behind")
				return
			}
		}
		below = low
		room := int(c.streamLimit - c.queued.Load() - c.waitN.Load())
		if room < 1 {
			continue // control frames took the room meanwhile
		}
		n := room
		if fetchMax > 0 {
			n = min(n, fetchMax)
		}
		batch, err := h.fetch(ctx, after, n)
		if ctx.Err() != nil {
			return // gone, or the hub is stopping: nothing more to hand over
		}
		if err != nil {
			h.RecordErrorAt(KindDatabase, placeCatchUp, err.Error(), c.subject())
			if !h.pause(c, tick.C, nil) {
				return
			}
			continue
		}
		wrote, stuck, cut, size := 0, false, false, 0
		for _, f := range batch {
			if size >= catchUpBytes {
				cut = true
				break
			}
			if !c.sees(f.room) {
				after = f.id // not this connection's: passed over
				continue
			}
			if !c.stream(f, false) {
				stuck = true
				break
			}
			size += len(f.forProtocol(c.proto))
			after = f.id
			wrote++
		}
		if stuck && wrote == 0 {
			// Nothing went: the session is closing (its writes fail), or
			// control frames took the room. Fetching again at once would
			// spin on the database for a client that may be gone.
			if !h.pause(c, tick.C, c.drained) {
				return
			}
			continue
		}
		if cut {
			// Large messages: the next round waits until half of this one
			// is written, and fetches no more than it handed over (each
			// fetched message is encoded, its HTML rendered, for nothing
			// if it is not handed over).
			below, fetchMax = int32(wrote/2), wrote+1
			continue
		}
		fetchMax *= 2 // smaller messages again: back to the stream's budget, by steps
		if len(batch) < n {
			joined := false
			if !h.b.sendWait(opRejoin{c: c, after: &after, joined: &joined}) || joined {
				return
			}
		}
	}
}

// catchUpBytes bounds what one round of a catch-up hands a client, on top
// of the stream's budget in frames: 512 frames of a "messages" socket
// could otherwise be 5 MB of long messages with their HTML, waiting in
// memory for one client that reads slowly, and a hundred such clients
// from one address held half a gigabyte.
const catchUpBytes = 256 << 10

// pause waits in catchUp for the next tick or for c's queue to drain (nil:
// the tick only). It reports false when c is gone or the hub is stopping,
// and catchUp should end.
func (h *Hub) pause(c *client, tick <-chan time.Time, drained <-chan struct{}) bool {
	select {
	case <-drained:
	case <-tick:
	case <-c.gone:
		return false
	case <-h.ctx.Done():
		return false
	}
	return true
}
