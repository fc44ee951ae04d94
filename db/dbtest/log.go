// Package dbtest has what tests of a cluster's parts need in place of
// NATS JetStream: a db.Stream in memory.
package dbtest

import (
	"context"
	"fmt"
	"sync"

	"nochat/db"
)

// Log is a db.Stream in memory, shared by the nodes of a test, that
// refuses, as unavailable, every publication until refuse of them have
// been refused: a cluster electing a leader after a node died. It keeps
// one entry a key, as JetStream's de-duplication does.
type Log struct {
	mu        sync.Mutex
	refuse    int
	published int // Publish calls
	entries   []db.StreamEntry
	seqOf     map[string]int64
	grew      chan struct{} // closed and replaced when an entry is added
}

// NewLog returns an empty log that refuses the first refuse publications.
func NewLog(refuse int) *Log {
	return &Log{refuse: refuse, seqOf: map[string]int64{}, grew: make(chan struct{})}
}

// Published is how many times Publish was called.
func (l *Log) Published() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.published
}

func (l *Log) Publish(_ context.Context, entries []db.StreamEntry) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.published++
	errs := make([]error, len(entries))
	if l.refuse > 0 {
		l.refuse--
		for i := range errs {
			errs[i] = fmt.Errorf("%w: no stream leader", db.ErrUnavailable)
		}
		return errs
	}
	for i, e := range entries {
		if seq, ok := l.seqOf[e.Key]; ok {
			entries[i].Seq = seq
			continue
		}
		e.Seq = int64(len(l.entries) + 1)
		l.entries = append(l.entries, e)
		l.seqOf[e.Key] = e.Seq
		entries[i].Seq = e.Seq
	}
	close(l.grew)
	l.grew = make(chan struct{})
	return errs
}

func (l *Log) Last(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries)), nil
}

func (l *Log) Entries(ctx context.Context, after int64) (<-chan db.StreamEntry, error) {
	out := make(chan db.StreamEntry)
	go func() {
		defer close(out)
		for {
			l.mu.Lock()
			next, grew := l.entries[min(after, int64(len(l.entries))):], l.grew
			l.mu.Unlock()
			for _, e := range next {
				select {
				case out <- e:
					after = e.Seq
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-grew:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

var _ db.Stream = (*Log)(nil)
