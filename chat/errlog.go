package chat

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"nochat/db"
)

// Error kinds in the recent-errors log.
const (
	KindRefusedUpgrade = "refused upgrade"
	KindBadOrigin      = "bad origin"
	KindTooMany        = "too many connections"
	KindTooLarge       = "too large"
	KindInvalidUTF8    = "invalid UTF-8"
	KindBadInput       = "bad input"
	KindRateLimited    = "rate limited"
	KindSlowClient     = "slow client disconnected"
	KindReadWrite      = "read/write error"
	KindDatabase       = "database error"
	KindPanic          = "panic"
)

// Places in the recent-errors log: where in the chat core an error happened.
const (
	placeUpgrade     = "WebSocket upgrade"
	placeSocket      = "WebSocket connection"
	placeFrame       = "WebSocket frame"
	placeSlow        = "slow client"
	placeWriter      = "message writer"
	placeCatchUp     = "catch-up"
	placeBroadcaster = "broadcaster"
	placeFlusher     = "error log flusher"
	placeNotify      = "notifications"
)

// errorLogSize bounds the entries kept, in memory and on disk. Entries are
// keyed by kind and place, fixed texts from the code, so a server has a few
// dozen whatever its clients send; the bound is a backstop, and trims the
// rows earlier versions left.
const errorLogSize = 256

// Lengths kept of an entry's texts, in bytes (cut at a character boundary).
const (
	maxErrorDetail  = 300
	maxErrorSubject = 200
	maxErrorPlace   = 100
)

// errorLog is the recent-errors log. An error that repeats (same kind and
// place) updates one entry: its count, and the latest detail and subject
// as a sample. Entries reach the database in one transaction at most once
// a second, and only when something changed, so a storm of errors costs
// one small write a second and an idle server none.
//
// The key leaves out the detail on purpose: a client chooses much of it
// (an Origin, a frame type, a close reason), and keyed by it, one client
// sending distinct texts chose the log's size and pushed every other entry
// out. Keyed by place, a client can only add to counts.
type errorLog struct {
	store *db.Store
	save  func(context.Context, []db.ErrorEntry, int) error // store.SaveErrors; tests make it fail

	flushing sync.Mutex // one flush at a time, so a flush returns after every earlier change is saved

	mu      sync.Mutex
	entries map[errorKey]*db.ErrorEntry
	dirty   map[errorKey]bool
}

type errorKey struct{ kind, place string }

func newErrorLog(store *db.Store) *errorLog {
	l := &errorLog{
		store:   store,
		save:    store.SaveErrors,
		entries: make(map[errorKey]*db.ErrorEntry),
		dirty:   make(map[errorKey]bool),
	}
	// Earlier runs' errors, so the log survives a restart.
	if saved, err := store.RecentErrors(context.Background(), errorLogSize); err == nil {
		for _, e := range saved {
			l.entries[errorKey{e.Kind, e.Place}] = &e
		}
	}
	return l
}

// addrPort matches the port of an address in an error text, which the
// sample leaves out.
var addrPort = regexp.MustCompile(`((?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-fA-F:.]+\]):\d+`)

// hasColonDigit reports whether s has a colon before a digit, as every
// match of addrPort does. The pattern costs a microsecond or two even on a
// short text without an address (most refusals'), and runs only when this
// finds one.
func hasColonDigit(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] == ':' && '0' <= s[i] && s[i] <= '9' {
			return true
		}
	}
	return false
}

// record counts an occurrence of kind at place, keeping detail and subject
// as the entry's latest sample.
func (l *errorLog) record(kind, place, detail, subject string) {
	// Cut before the pattern runs too: a detail can be a client's whole
	// frame.
	detail = Cut(detail, 4*maxErrorDetail)
	if hasColonDigit(detail) {
		detail = addrPort.ReplaceAllString(detail, "$1")
	}
	detail = Cut(detail, maxErrorDetail)
	subject = Cut(subject, maxErrorSubject)
	k := errorKey{Cut(kind, maxErrorPlace), Cut(place, maxErrorPlace)}
	now := time.Now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[k]
	if !ok {
		// Make room first, so the entry being added is never the one to
		// go (it was, when its LastSeen was still 0, and flush then
		// dereferenced the entry it had lost).
		for len(l.entries) >= errorLogSize {
			l.evictOldestLocked()
		}
		e = &db.ErrorEntry{Kind: k.kind, Place: k.place, FirstSeen: now}
		l.entries[k] = e
	}
	e.Count++
	e.Detail = detail
	e.Subject = subject
	e.LastSeen = now
	l.dirty[k] = true
}

func (l *errorLog) evictOldestLocked() {
	var oldest errorKey
	first := true
	for k, e := range l.entries {
		if first || e.LastSeen < l.entries[oldest].LastSeen {
			oldest, first = k, false
		}
	}
	delete(l.entries, oldest)
	delete(l.dirty, oldest)
}

// list returns up to n entries, the most recently seen first.
func (l *errorLog) list(n int) []db.ErrorEntry {
	l.mu.Lock()
	out := make([]db.ErrorEntry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, *e)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b db.ErrorEntry) int { return cmp.Compare(b.LastSeen, a.LastSeen) })
	return out[:min(n, len(out))]
}

// flush writes the changed entries. A failed write keeps them dirty for the
// next try.
func (l *errorLog) flush(ctx context.Context) error {
	l.flushing.Lock()
	defer l.flushing.Unlock()
	batch := l.takeDirty()
	if len(batch) == 0 {
		return nil
	}
	if err := l.save(ctx, batch, errorLogSize); err != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, e := range batch {
			if k := (errorKey{e.Kind, e.Place}); l.entries[k] != nil {
				l.dirty[k] = true
			}
		}
		return err
	}
	return nil
}

// takeDirty copies the changed entries and marks them clean.
func (l *errorLog) takeDirty() []db.ErrorEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := make([]db.ErrorEntry, 0, len(l.dirty))
	for k := range l.dirty {
		if e := l.entries[k]; e != nil {
			batch = append(batch, *e)
		}
	}
	clear(l.dirty)
	return batch
}

func (l *errorLog) clear(ctx context.Context) error {
	l.mu.Lock()
	clear(l.entries)
	clear(l.dirty)
	l.mu.Unlock()
	return l.store.ClearErrors(ctx)
}

// recordPanic files a recovered panic for the admin and logs its stack.
func (h *Hub) recordPanic(v any, place, subject string) {
	h.RecordErrorAt(KindPanic, place, fmt.Sprint(v), subject)
	h.log.Error("panic", "place", place, "subject", subject, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// recordRecovered, deferred on one of the hub's goroutines, turns a panic
// into an error entry, so that the goroutine (or what restarts it) goes on
// instead of the process ending.
func (h *Hub) recordRecovered(place, subject string) {
	if v := recover(); v != nil {
		h.recordPanic(v, place, subject)
	}
}

// flushErrors writes the error log's changes once a second, and once more
// when the hub closes.
func (h *Hub) flushErrors() {
	defer close(h.errorsDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-h.ctx.Done():
			return
		}
		h.flushErrorsOnce()
	}
}

// flushErrorsOnce is one pass of the flusher. A panic in it is an error
// entry, which the next pass writes: the loop goes on.
func (h *Hub) flushErrorsOnce() {
	defer h.recordRecovered(placeFlusher, "the error log")
	if err := h.errors.flush(h.ctx); err != nil && h.ctx.Err() == nil {
		h.log.Error("save error log", "err", err)
	}
}
