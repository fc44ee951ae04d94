package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Notification levels: what of a room a member is told of while away.
const (
	NotifyAll      = "all"      // every message
	NotifyMentions = "mentions" // mentions of them or of everyone, and every message of a direct room
	NotifyNone     = "none"     // nothing
)

// SetNotify stores member user's notification level in room, or reports
// ErrNotFound if user is not a member. On a cluster it is a command of
// the log, so each of the person's pages hears as they chose, whichever
// node serves it.
func (s *Store) SetNotify(ctx context.Context, room, user int64, level string) error {
	if _, err := s.command(ctx, command{Op: opNotify, RoomID: room, AccountID: user, Kind: level}); err != nil {
		return fmt.Errorf("set notify in room %d: %w", room, err)
	}
	return nil
}

// setNotify is SetNotify in tx.
func setNotify(ctx context.Context, tx *sql.Tx, room, user int64, level string) error {
	res, err := tx.ExecContext(ctx, "UPDATE members SET notify = ? WHERE room_id = ? AND user_id = ?", level, room, user)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Notified is a member to notify of a room's messages, at their level.
type Notified struct {
	UserID int64
	Notify string // NotifyAll, NotifyMentions or NotifyNone
}

// NotifyLevels returns the room's members who have a push subscription,
// with their notification level: nobody else can be pushed to.
func (s *Store) NotifyLevels(ctx context.Context, room int64) ([]Notified, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT m.user_id, m.notify FROM members m
		WHERE m.room_id = ? AND m.notify != 'none'
		AND EXISTS (SELECT 1 FROM push_subscriptions p WHERE p.account_id = m.user_id)`, room)
	if err != nil {
		return nil, fmt.Errorf("notify levels of room %d: %w", room, err)
	}
	defer rows.Close()
	var out []Notified
	for rows.Next() {
		var n Notified
		if err := rows.Scan(&n.UserID, &n.Notify); err != nil {
			return nil, fmt.Errorf("notify levels of room %d: %w", room, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PushSubscription is one browser's Web Push subscription: where to send
// (Endpoint, the push service's URL) and the keys to encrypt for it.
type PushSubscription struct {
	ID        int64
	SessionID int64
	AccountID int64
	Endpoint  string
	P256dh    string // base64url
	Auth      string // base64url
	Created   time.Time
}

// SavePushSubscription stores a subscription with its session; one with
// the same endpoint is replaced (a browser that subscribes again), and
// past max of the account's subscriptions the oldest go. On a cluster it
// is a command of the log: every node holds every subscription, so the
// node a message is sent through pushes it, whichever node the device
// subscribed through.
func (s *Store) SavePushSubscription(ctx context.Context, sub PushSubscription, max int) error {
	if _, err := s.command(ctx, command{Op: opPushSave, Push: &sub, Max: max}); err != nil {
		return fmt.Errorf("save push subscription: %w", err)
	}
	return nil
}

// savePushSubscription is SavePushSubscription in tx.
func savePushSubscription(ctx context.Context, tx *sql.Tx, sub PushSubscription, max int) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO push_subscriptions (session_id, account_id, endpoint, p256dh, auth, created)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (endpoint) DO UPDATE SET session_id = excluded.session_id, account_id = excluded.account_id,
			p256dh = excluded.p256dh, auth = excluded.auth, created = excluded.created`,
		sub.SessionID, sub.AccountID, sub.Endpoint, sub.P256dh, sub.Auth, sub.Created.UnixMilli()); err != nil {
		return err
	}
	// The newest max stay; ids grow with inserts, and a replaced one keeps
	// its id, so order by when it was (re)made.
	if _, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE account_id = ? AND id NOT IN (
		SELECT id FROM push_subscriptions WHERE account_id = ? ORDER BY created DESC, id DESC LIMIT ?)`,
		sub.AccountID, sub.AccountID, max); err != nil {
		return fmt.Errorf("drop the oldest: %w", err)
	}
	return nil
}

// DeletePushSubscription removes account's subscription at endpoint, or
// reports ErrNotFound if it has none there.
func (s *Store) DeletePushSubscription(ctx context.Context, account int64, endpoint string) error {
	if _, err := s.command(ctx, command{Op: opPushDelete, AccountID: account, Value: endpoint}); err != nil {
		return fmt.Errorf("delete push subscription: %w", err)
	}
	return nil
}

// DropPushSubscription removes the subscription at endpoint, whoever's it
// is: the push service said it is gone (404, 410). By its endpoint, not
// its id: a node's ids of subscriptions from before they were shared are
// its own.
func (s *Store) DropPushSubscription(ctx context.Context, endpoint string) error {
	if _, err := s.command(ctx, command{Op: opPushDrop, Value: endpoint}); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("drop push subscription at %s: %w", endpoint, err)
	}
	return nil
}

// deletePushSubscription runs query, a deletion of subscriptions, in tx,
// and reports ErrNotFound if it deleted none.
func deletePushSubscription(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// PushSubscriptions returns account's subscriptions whose session is live
// at now, oldest first: an expired session's devices are told nothing,
// before pruning deletes them with it.
func (s *Store) PushSubscriptions(ctx context.Context, account int64, now time.Time) ([]PushSubscription, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT p.id, p.session_id, p.account_id, p.endpoint, p.p256dh, p.auth, p.created
		FROM push_subscriptions p JOIN sessions s ON s.id = p.session_id
		WHERE p.account_id = ? AND s.expires > ? ORDER BY p.id`, account, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("push subscriptions of %d: %w", account, err)
	}
	defer rows.Close()
	var out []PushSubscription
	for rows.Next() {
		var (
			p       PushSubscription
			created int64
		)
		if err := rows.Scan(&p.ID, &p.SessionID, &p.AccountID, &p.Endpoint, &p.P256dh, &p.Auth, &created); err != nil {
			return nil, fmt.Errorf("push subscriptions of %d: %w", account, err)
		}
		p.Created = time.UnixMilli(created)
		out = append(out, p)
	}
	return out, rows.Err()
}
