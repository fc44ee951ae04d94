package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// MaxAudit is how many of the newest audit lines are kept: years of a
// club's admin work, and a bound on what a runaway script could write.
const MaxAudit = 1000

// AuditEntry is one admin action: who did what, when.
type AuditEntry struct {
	ID      int64
	At      time.Time
	ActorID int64  // the admin's account; 0 for the admin password
	Actor   string // the admin's name then
	Action  string // a fixed word: "deactivate", "ban", "role", ...
	Target  string // what it acted on, in words: a person's name, a message
	Detail  string
}

// Audit adds a line to the audit list and, in the same transaction, drops
// the lines beyond the newest MaxAudit.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit (at, actor_id, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
			e.At.UnixMilli(), nullID(e.ActorID), e.Actor, e.Action, e.Target, e.Detail); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)", MaxAudit)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns the newest n audit lines, newest first.
func (s *Store) AuditLog(ctx context.Context, n int) ([]AuditEntry, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT id, at, actor_id, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", n)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e     AuditEntry
			at    int64
			actor sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &at, &actor, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		e.At, e.ActorID = time.UnixMilli(at), actor.Int64
		out = append(out, e)
	}
	return out, rows.Err()
}
