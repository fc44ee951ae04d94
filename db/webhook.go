package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Incoming webhooks: each posts into one room as its own bot account,
// made with it (role bot, no token, a member of that room only). The
// account stays when the webhook is deleted, so that its messages keep
// their author; it leaves the room.

// MaxWebhooksPerRoom bounds the webhooks of one room: a family's tools
// are a handful, and each webhook is an account.
const MaxWebhooksPerRoom = 20

// ErrTooManyWebhooks refuses a webhook past MaxWebhooksPerRoom.
var ErrTooManyWebhooks = fmt.Errorf("a room may have at most %d webhooks: delete one first", MaxWebhooksPerRoom)

// Webhook is an incoming webhook as lists show it.
type Webhook struct {
	ID        int64
	Room      int64
	AccountID int64  // the bot account it posts as
	Name      string // that account's name
	Created   time.Time
	CreatedBy string    // an account's name, or "shell"
	LastUsed  time.Time // zero if never
	// Off is whether an admin deactivated the account it posts as: then
	// it posts nothing until the account is reactivated.
	Off bool
}

// CreateWebhook stores a webhook for room whose secret has the SHA-256
// secretHash, with a new bot account named name (key is its name key:
// ErrNameTaken if another account has it) in that room only.
func (s *Store) CreateWebhook(ctx context.Context, room int64, name, key string, secretHash []byte, by string, now time.Time) (Webhook, error) {
	a := Account{Name: name, NameKey: key, Role: RoleBot, Created: now}
	r, err := s.command(ctx, command{Op: opWebhook, RoomID: room, Account: &a, TokenHash: secretHash, Value: by})
	if err != nil {
		if errors.Is(err, ErrNameTaken) || errors.Is(err, ErrTooManyWebhooks) {
			return Webhook{}, err
		}
		return Webhook{}, fmt.Errorf("create webhook %q: %w", name, err)
	}
	return r.Webhook, nil
}

// createWebhook is CreateWebhook in tx. id is the webhook's and its
// account's id, as for insertAccount.
func createWebhook(ctx context.Context, tx *sql.Tx, room int64, a Account, secretHash []byte, by string, id int64) (Webhook, error) {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM webhooks WHERE room_id = ?", room).Scan(&n); err != nil {
		return Webhook{}, err
	}
	if n >= MaxWebhooksPerRoom {
		return Webhook{}, ErrTooManyWebhooks
	}
	a.ID = id
	a, err := insertAccount(ctx, tx, a)
	if err != nil {
		return Webhook{}, err
	}
	h := Webhook{Room: room, AccountID: a.ID, Name: a.Name, Created: a.Created, CreatedBy: by}
	// Every new account joins the default room by trigger; a webhook's is
	// in its room only.
	if _, err := tx.ExecContext(ctx, "DELETE FROM members WHERE user_id = ?", a.ID); err != nil {
		return Webhook{}, err
	}
	if _, err := addMember(ctx, tx, room, a.ID, a.Created.UnixMilli()); err != nil {
		return Webhook{}, fmt.Errorf("room %d: %w", room, err)
	}
	err = tx.QueryRowContext(ctx, "INSERT INTO webhooks (id, room_id, account_id, secret_hash, created, created_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
		nullID(id), room, a.ID, secretHash, a.Created.UnixMilli(), by).Scan(&h.ID)
	return h, err
}

const webhookColumns = "w.id, w.room_id, w.account_id, a.name, w.created, w.created_by, w.last_used, a.deactivated IS NOT NULL"

func scanWebhook(row interface{ Scan(...any) error }, extra ...any) (Webhook, error) {
	var (
		h       Webhook
		created int64
		used    sql.NullInt64
	)
	if err := row.Scan(append([]any{&h.ID, &h.Room, &h.AccountID, &h.Name, &created, &h.CreatedBy, &used, &h.Off}, extra...)...); err != nil {
		return Webhook{}, err
	}
	h.Created = time.UnixMilli(created)
	if used.Valid {
		h.LastUsed = time.UnixMilli(used.Int64)
	}
	return h, nil
}

// WebhookSecret returns webhook id and its secret's SHA-256, or
// ErrNotFound. It reads the database each time, so that a webhook made
// or deleted by another process (`nochat webhook`) counts at once.
func (s *Store) WebhookSecret(ctx context.Context, id int64) (Webhook, []byte, error) {
	var hash []byte
	find := func() (Webhook, error) {
		return scanWebhook(s.read.QueryRowContext(ctx, "SELECT "+webhookColumns+", w.secret_hash FROM webhooks w JOIN accounts a ON a.id = w.account_id WHERE w.id = ?", id), &hash)
	}
	h, err := find()
	if errors.Is(err, sql.ErrNoRows) && s.shared != nil {
		// One made through another node a moment ago (see
		// SessionByToken).
		s.shared.catchUp(ctx)
		h, err = find()
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Webhook{}, nil, fmt.Errorf("webhook %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Webhook{}, nil, fmt.Errorf("webhook %d: %w", id, err)
	}
	return h, hash, nil
}

// Webhooks returns the webhooks of room, or of every room when room is
// 0, oldest first.
func (s *Store) Webhooks(ctx context.Context, room int64) ([]Webhook, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+webhookColumns+" FROM webhooks w JOIN accounts a ON a.id = w.account_id WHERE ? = 0 OR w.room_id = ? ORDER BY w.id", room, room)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		h, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteWebhook deletes webhook id (its URL opens nothing from the commit
// on), and takes its account out of its room; it returns what it was, or
// ErrNotFound.
func (s *Store) DeleteWebhook(ctx context.Context, id int64) (Webhook, error) {
	r, err := s.command(ctx, command{Op: opWebhookDelete, ID: id})
	if err != nil {
		return Webhook{}, fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return r.Webhook, nil
}

// deleteWebhook is DeleteWebhook in tx.
func deleteWebhook(ctx context.Context, tx *sql.Tx, id int64) (Webhook, error) {
	h, err := scanWebhook(tx.QueryRowContext(ctx, "SELECT "+webhookColumns+" FROM webhooks w JOIN accounts a ON a.id = w.account_id WHERE w.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Webhook{}, ErrNotFound
	}
	if err != nil {
		return Webhook{}, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM webhooks WHERE id = ?", id); err != nil {
		return Webhook{}, err
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM members WHERE room_id = ? AND user_id = ?", h.Room, h.AccountID)
	return h, err
}

// TouchWebhook records that webhook id posted at now.
func (s *Store) TouchWebhook(ctx context.Context, id int64, now time.Time) error {
	if _, err := s.write.ExecContext(ctx, "UPDATE webhooks SET last_used = ? WHERE id = ?", now.UnixMilli(), id); err != nil {
		return fmt.Errorf("touch webhook %d: %w", id, err)
	}
	return nil
}
