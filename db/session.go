package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Kinds of session.
const (
	// SessionAdmin is the kind of an admin's password session.
	SessionAdmin = "admin"
	// SessionAccount is the kind of a person's session, opened by signing
	// in to an account.
	SessionAccount = "account"
	// SessionReset (people.go) is a password-reset link's token.
)

// Session is one signed-in browser. Its token is never stored, only the
// token's SHA-256, which is how a request finds its session.
type Session struct {
	ID        int64
	Kind      string // SessionAdmin or SessionAccount
	AccountID int64  // the person signed in; 0 for the admin password
	UserAgent string
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time
	Address   string // where it was signed in from (chat.AddressKey); "" if unknown
}

const sessionColumns = "id, kind, account_id, user_agent, created, last_seen, expires, address"

func scanSession(row interface{ Scan(...any) error }) (Session, error) {
	var (
		sess                     Session
		account                  sql.NullInt64
		created, seen, expiresAt int64
	)
	if err := row.Scan(&sess.ID, &sess.Kind, &account, &sess.UserAgent, &created, &seen, &expiresAt, &sess.Address); err != nil {
		return Session{}, err
	}
	sess.AccountID = account.Int64
	sess.Created, sess.LastSeen, sess.Expires = time.UnixMilli(created), time.UnixMilli(seen), time.UnixMilli(expiresAt)
	return sess, nil
}

// CreateSession stores a new session under the SHA-256 of its token. In the
// same transaction it removes expired sessions and, past max live sessions
// of the same kind and account, the oldest ones, so the table stays small
// whatever happens.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, sess Session, max int) error {
	_, err := s.command(ctx, command{Op: opSession, TokenHash: tokenHash, Session: &sess, Max: max})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// createSession is CreateSession in tx, under sess.ID if set (a cluster's
// log names it), else the next id.
func createSession(ctx context.Context, tx *sql.Tx, tokenHash []byte, sess Session, max int) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires <= ?", sess.Created.UnixMilli()); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, token_hash, kind, account_id, user_agent, created, last_seen, expires, address)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		nullID(sess.ID), tokenHash, sess.Kind, nullID(sess.AccountID), sess.UserAgent,
		sess.Created.UnixMilli(), sess.Created.UnixMilli(), sess.Expires.UnixMilli(), sess.Address); err != nil {
		return err
	}
	// The newest max of this owner's sessions stay; ids grow with inserts.
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE kind = ? AND account_id IS ? AND id NOT IN (
		SELECT id FROM sessions WHERE kind = ? AND account_id IS ? ORDER BY id DESC LIMIT ?)`,
		sess.Kind, nullID(sess.AccountID), sess.Kind, nullID(sess.AccountID), max); err != nil {
		return fmt.Errorf("drop the oldest: %w", err)
	}
	return nil
}

// SessionByToken returns the live session whose token has this SHA-256, or
// ErrNotFound if there is none or it expired by now.
//
// On a cluster, a token this node does not know may be a sign-in made
// through another node a moment ago (a load balancer sends the browser's
// next request anywhere): it waits, briefly, until it has applied what
// the log holds, and looks again.
func (s *Store) SessionByToken(ctx context.Context, tokenHash []byte, now time.Time) (Session, error) {
	find := func() (Session, error) {
		return scanSession(s.read.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE token_hash = ? AND expires > ?", tokenHash, now.UnixMilli()))
	}
	sess, err := find()
	if errors.Is(err, sql.ErrNoRows) && s.shared != nil {
		s.shared.catchUp(ctx)
		sess, err = find()
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	return sess, nil
}

// SessionExists reports whether the session with this id is still stored:
// not signed out, ended by a password change or an admin, or pruned.
func (s *Store) SessionExists(ctx context.Context, id int64) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, "SELECT 1 FROM sessions WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session %d: %w", id, err)
	}
	return true, nil
}

// TouchSession records that a session was used at now.
func (s *Store) TouchSession(ctx context.Context, id int64, now time.Time) error {
	if _, err := s.write.ExecContext(ctx, "UPDATE sessions SET last_seen = ? WHERE id = ?", now.UnixMilli(), id); err != nil {
		return fmt.Errorf("touch session %d: %w", id, err)
	}
	return nil
}

// DeleteSession ends the session whose token has this SHA-256, if any.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.command(ctx, command{Op: opSignOut, TokenHash: tokenHash})
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteSessions ends every session of a kind (all admin sessions when the
// admin password changes) and reports how many there were.
func (s *Store) DeleteSessions(ctx context.Context, kind string) (int64, error) {
	r, err := s.command(ctx, command{Op: opEndKind, Kind: kind})
	if err != nil {
		return 0, fmt.Errorf("delete %s sessions: %w", kind, err)
	}
	return r.Count, nil
}

// PruneSessions removes the sessions expired by now.
func (s *Store) PruneSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, "DELETE FROM sessions WHERE expires <= ?", now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// nullID is an account id as SQL: NULL for none.
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// nullText is s as a nullable column: NULL for "".
func nullText(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
