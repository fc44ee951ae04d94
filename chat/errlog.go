package chat

import (
	"cmp"
	"context"
	"regexp"
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

// errorLogSize is how many distinct errors are kept, in memory and on disk.
const errorLogSize = 1000

// errorLog is the recent-errors log. An error that repeats (same kind and
// detail) updates one entry's count; entries reach the database in one
// transaction at most once a second, and only when something changed, so a
// storm of errors costs one small write a second and an idle server none.
type errorLog struct {
	store *db.Store

	mu      sync.Mutex
	entries map[errorKey]*db.ErrorEntry
	dirty   map[errorKey]bool
}

type errorKey struct{ kind, detail string }

func newErrorLog(store *db.Store) *errorLog {
	l := &errorLog{
		store:   store,
		entries: make(map[errorKey]*db.ErrorEntry),
		dirty:   make(map[errorKey]bool),
	}
	// Earlier runs' errors, so the log survives a restart.
	if saved, err := store.RecentErrors(context.Background(), errorLogSize); err == nil {
		for _, e := range saved {
			l.entries[errorKey{e.Kind, e.Detail}] = &e
		}
	}
	return l
}

// addrPort matches the port of an address in an error text: the same error
// from another client port is the same error.
var addrPort = regexp.MustCompile(`((?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-fA-F:.]+\]):\d+`)

func (l *errorLog) record(kind, detail, subject string) {
	detail = cut(addrPort.ReplaceAllString(detail, "$1"), 300)
	now := time.Now().UnixMilli()
	k := errorKey{kind, detail}
	l.mu.Lock()
	e, ok := l.entries[k]
	if !ok {
		e = &db.ErrorEntry{Kind: kind, Detail: detail, FirstSeen: now}
		l.entries[k] = e
		if len(l.entries) > errorLogSize {
			l.evictOldest()
		}
	}
	e.Count++
	e.Subject = subject
	e.LastSeen = now
	l.dirty[k] = true
	l.mu.Unlock()
}

func (l *errorLog) evictOldest() {
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
	l.mu.Lock()
	if len(l.dirty) == 0 {
		l.mu.Unlock()
		return nil
	}
	batch := make([]db.ErrorEntry, 0, len(l.dirty))
	for k := range l.dirty {
		batch = append(batch, *l.entries[k])
	}
	clear(l.dirty)
	l.mu.Unlock()
	if err := l.store.SaveErrors(ctx, batch, errorLogSize); err != nil {
		l.mu.Lock()
		for _, e := range batch {
			if _, ok := l.entries[errorKey{e.Kind, e.Detail}]; ok {
				l.dirty[errorKey{e.Kind, e.Detail}] = true
			}
		}
		l.mu.Unlock()
		return err
	}
	return nil
}

func (l *errorLog) clear(ctx context.Context) error {
	l.mu.Lock()
	clear(l.entries)
	clear(l.dirty)
	l.mu.Unlock()
	return l.store.ClearErrors(ctx)
}
