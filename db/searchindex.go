package db

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// The search index follows the messages a moment later (migration 0023):
// a send's transaction stores the message, and the indexer adds what was
// stored to messages_fts in batches, on the write connection, between
// the Writer's transactions. A search first brings the index up to the
// newest message, so what it finds is what it would find if every send
// indexed its own message; a send's commit is spared FTS5's work, and a
// burst's messages reach the index in a few large transactions rather
// than in every small one.
//
// Edits and deletions keep the index in step in their own transactions
// (the triggers), for the messages it already holds.

// DefaultSearchIndexDelay is how long the indexer lets new messages gather
// after a commit before it indexes them.
const DefaultSearchIndexDelay = 100 * time.Millisecond

// searchIndexBatch is the most message ids one index transaction covers:
// it bounds how long a send waits behind the index for the write
// connection (a few milliseconds on a Pi).
const searchIndexBatch = 2000

// searchIndexer keeps messages_fts up with the messages.
type searchIndexer struct {
	write *sql.DB
	delay time.Duration
	log   *slog.Logger

	stored  atomic.Int64 // the newest message id committed
	indexed atomic.Int64 // the id at and below which the index holds every message

	kick chan struct{}
	// ctx ends when the indexer is closed, ending a catch-up between (or
	// in) its transactions; what is left waits for the next Open.
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
}

// newSearchIndexer reads how far the index has come; run starts it.
func newSearchIndexer(ctx context.Context, write *sql.DB, delay time.Duration, log *slog.Logger) (*searchIndexer, error) {
	ix := &searchIndexer{write: write, delay: delay, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	ix.ctx, ix.stop = context.WithCancel(context.Background())
	if err := ix.reread(ctx); err != nil {
		ix.stop()
		return nil, err
	}
	ix.kick <- struct{}{} // what an earlier run left
	return ix, nil
}

// reread learns from the database how far the messages and the index go:
// at Open, and after an import rebuilt the index.
func (ix *searchIndexer) reread(ctx context.Context) error {
	var stored, indexed int64
	err := ix.write.QueryRowContext(ctx, "SELECT (SELECT ifnull(max(id), 0) FROM messages), (SELECT indexed_to FROM search_index)").Scan(&stored, &indexed)
	if err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	raise(&ix.stored, stored)
	raise(&ix.indexed, indexed)
	return nil
}

// committed tells the indexer that messages up to id are stored.
func (ix *searchIndexer) committed(id int64) {
	if !raise(&ix.stored, id) {
		return
	}
	select {
	case ix.kick <- struct{}{}:
	default:
	}
}

func (ix *searchIndexer) run() {
	defer close(ix.done)
	for {
		select {
		case <-ix.ctx.Done():
			return
		case <-ix.kick:
		}
		select {
		case <-ix.ctx.Done():
			return
		case <-time.After(ix.delay):
		}
		if err := ix.catchUp(ix.ctx); err != nil && ix.ctx.Err() == nil {
			// The next commit, or the next search, tries again.
			ix.log.Warn("search index: could not add the newest messages", "err", err)
		}
	}
}

// catchUp indexes every message committed before it was called; at once
// when there is none.
func (ix *searchIndexer) catchUp(ctx context.Context) error {
	// Every message committed by now is seen by the transactions below;
	// those committed meanwhile are for the next call.
	want := ix.stored.Load()
	for ix.indexed.Load() < want {
		tx, err := ix.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		to, more, err := indexNext(ctx, tx, searchIndexBatch)
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("search index: %w", err)
		}
		if !more {
			// The newest messages may have been deleted since: the
			// index is as far as the messages go.
			to = max(to, want)
		}
		raise(&ix.indexed, to)
	}
	return nil
}

// indexNext adds to the index, in tx, the messages above indexed_to, up to
// limit ids of them; it returns the new indexed_to, and whether messages
// above it wait still.
func indexNext(ctx context.Context, tx *sql.Tx, limit int64) (to int64, more bool, err error) {
	var from, top int64
	err = tx.QueryRowContext(ctx, "SELECT indexed_to, (SELECT ifnull(max(id), 0) FROM messages) FROM search_index").Scan(&from, &top)
	if err != nil {
		return 0, false, err
	}
	to = min(top, from+limit)
	if to <= from {
		return from, false, nil
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO messages_fts (rowid, message) SELECT id, message FROM messages WHERE id > ? AND id <= ?", from, to); err != nil {
		return 0, false, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE search_index SET indexed_to = ?", to); err != nil {
		return 0, false, err
	}
	return to, to < top, nil
}

// raise sets v to n if n is larger, and says whether it did.
func raise(v *atomic.Int64, n int64) bool {
	for {
		old := v.Load()
		if n <= old {
			return false
		}
		if v.CompareAndSwap(old, n) {
			return true
		}
	}
}

// close stops the indexer. What it had not indexed yet waits for the next
// Open.
func (ix *searchIndexer) close() {
	ix.stop()
	<-ix.done
}
