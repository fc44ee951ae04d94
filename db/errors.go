package db

import (
	"context"
	"fmt"
)

// ErrorEntry is one row of the recent-errors log: an error kind and where
// it happened, how often, when, and the detail and subject of the latest
// occurrence.
type ErrorEntry struct {
	Kind      string
	Place     string // where in NoChat: a route, a refusal code, a loop
	Detail    string // the latest occurrence's, a sample
	Subject   string
	Count     int64
	FirstSeen int64 // Unix milliseconds
	LastSeen  int64 // Unix milliseconds
}

// SaveErrors writes entries in one transaction: a new (kind, place) is
// added, a known one takes the entry's count, detail, subject and last time.
// Then only the newest keep rows are kept.
func (s *Store) SaveErrors(ctx context.Context, entries []ErrorEntry, keep int) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save errors: %w", err)
	}
	defer tx.Rollback()
	for _, e := range entries {
		_, err := tx.ExecContext(ctx, `INSERT INTO errors (kind, place, detail, subject, count, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (kind, place) DO UPDATE SET
				detail = excluded.detail, subject = excluded.subject,
				count = excluded.count, last_seen = excluded.last_seen`,
			e.Kind, e.Place, e.Detail, e.Subject, e.Count, e.FirstSeen, e.LastSeen)
		if err != nil {
			return fmt.Errorf("save errors: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM errors WHERE id NOT IN
		(SELECT id FROM errors ORDER BY last_seen DESC LIMIT ?)`, keep); err != nil {
		return fmt.Errorf("save errors: trim: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save errors: %w", err)
	}
	return nil
}

// RecentErrors returns up to n entries, the most recently seen first.
func (s *Store) RecentErrors(ctx context.Context, n int) ([]ErrorEntry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT kind, place, detail, subject, count, first_seen, last_seen
		FROM errors ORDER BY last_seen DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("recent errors: %w", err)
	}
	defer rows.Close()
	var out []ErrorEntry
	for rows.Next() {
		var e ErrorEntry
		if err := rows.Scan(&e.Kind, &e.Place, &e.Detail, &e.Subject, &e.Count, &e.FirstSeen, &e.LastSeen); err != nil {
			return nil, fmt.Errorf("recent errors: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ClearErrors empties the recent-errors log.
func (s *Store) ClearErrors(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, "DELETE FROM errors"); err != nil {
		return fmt.Errorf("clear errors: %w", err)
	}
	return nil
}
