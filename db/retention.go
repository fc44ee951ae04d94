package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DefaultPruneBatch is how many messages one Prune transaction deletes.
const DefaultPruneBatch = 500

// prunePause is the breather between two Prune transactions. The write
// connection is handed to a waiting writer at the end of each transaction
// anyway; the pause also leaves the disk to it.
const prunePause = 10 * time.Millisecond

// Prune deletes the messages that retention no longer keeps: those stored
// before olderThan (zero: no age limit) and all but the newest keepNewest
// (0: no count limit). It deletes oldest first, batch messages per
// transaction, so a writer never waits behind more than one small
// transaction, and returns how many it deleted, also when ctx ends midway,
// and below: once a pass has deleted everything it meant to, no message
// with an id under below is left (0 when it deleted nothing or stopped
// midway), which is what a cache of recent messages needs to forget.
//
// Age is judged oldest first (by id), stopping at the first message young
// enough to keep: a message stamped by a clock that ran behind (a Pi has no
// real-time clock; before NTP it may think it is 1970) is not deleted ahead
// of the messages around it.
//
// When there is nothing to delete, Prune only reads: an idle server does not
// write to the SD card.
func (s *Store) Prune(ctx context.Context, olderThan time.Time, keepNewest int, batch int) (deleted, below int64, err error) {
	if olderThan.IsZero() && keepNewest <= 0 {
		return 0, 0, nil
	}
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	below, err = s.pruneBound(ctx, olderThan, keepNewest)
	if err != nil || below == 0 {
		return 0, 0, err
	}
	for {
		n, err := s.deleteCounted(ctx,
			"DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE id < ? ORDER BY id LIMIT ?)", below, batch)
		if err != nil {
			return deleted, 0, fmt.Errorf("prune messages: %w", err)
		}
		deleted += n
		s.pruned.Add(n)
		if n < int64(batch) {
			// The events of the messages pruned went with them (the
			// trigger messages_forget); the deletions of messages under
			// below are the rest.
			if _, err := s.write.ExecContext(ctx, "DELETE FROM events WHERE message_id < ?", below); err != nil {
				return deleted, 0, fmt.Errorf("prune events: %w", err)
			}
			return deleted, below, nil
		}
		select {
		case <-time.After(prunePause):
		case <-ctx.Done():
			return deleted, 0, ctx.Err()
		}
	}
}

// Pruned is how many messages Prune has deleted since the store was opened.
func (s *Store) Pruned() int64 { return s.pruned.Load() }

// pruneBound returns the id below which every message goes, or 0 when none
// does. It reads only, on the read pool, with index walks bounded by what
// goes (age) or by keepNewest (count).
func (s *Store) pruneBound(ctx context.Context, olderThan time.Time, keepNewest int) (int64, error) {
	var lo, hi sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT min(id), max(id) FROM messages").Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("prune messages: %w", err)
	}
	if !lo.Valid {
		return 0, nil // an empty room
	}
	var below int64
	// Ids only grow, so the span bounds the count: a room whose span fits
	// in keepNewest keeps everything without counting.
	if keepNewest > 0 && hi.Int64-lo.Int64+1 > int64(keepNewest) {
		var id int64
		err := s.read.QueryRowContext(ctx, "SELECT id FROM messages ORDER BY id DESC LIMIT 1 OFFSET ?", keepNewest).Scan(&id)
		switch {
		case err == nil:
			below = id + 1
		case err != sql.ErrNoRows:
			return 0, fmt.Errorf("prune messages: %w", err)
		}
	}
	if !olderThan.IsZero() {
		var first sql.NullInt64 // the oldest message young enough to keep
		if err := s.read.QueryRowContext(ctx, "SELECT min(id) FROM (SELECT id FROM messages WHERE timestamp >= ? ORDER BY id LIMIT 1)",
			olderThan.UnixMilli()).Scan(&first); err != nil {
			return 0, fmt.Errorf("prune messages: %w", err)
		}
		keepFrom := hi.Int64 + 1 // none is young enough: all go
		if first.Valid {
			keepFrom = first.Int64
		}
		below = max(below, keepFrom)
	}
	if below <= lo.Int64 {
		return 0, nil
	}
	return below, nil
}
