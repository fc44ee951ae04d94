package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// BotWebhook is a bot's outgoing webhook: where NoChat tells the bot of
// the messages meant for it, and the secret it signs them with.
type BotWebhook struct {
	Bot    Account // the bot's account
	URL    string
	Secret string
}

// SetBotWebhook gives bot id the outgoing webhook url, signed with
// secret, or with url "" takes its webhook away. ErrNotBot if id is not a
// bot's account.
func (s *Store) SetBotWebhook(ctx context.Context, id int64, url, secret string, now time.Time) error {
	_, err := s.command(ctx, command{Op: opBotWebhook, AccountID: id, Value: url, Key: secret, At: now.UnixMilli()})
	if err != nil {
		return fmt.Errorf("bot %d webhook: %w", id, err)
	}
	return nil
}

// setBotWebhook is SetBotWebhook in tx.
func setBotWebhook(ctx context.Context, tx *sql.Tx, id int64, url, secret string, now int64) error {
	var is bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM bots WHERE account_id = ?)", id).Scan(&is); err != nil {
		return err
	}
	if !is {
		return ErrNotBot
	}
	var err error
	if url == "" {
		_, err = tx.ExecContext(ctx, "DELETE FROM bot_webhooks WHERE account_id = ?", id)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO bot_webhooks (account_id, url, secret, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, created = excluded.created`, id, url, secret, now)
	}
	return err
}

// BotWebhooks returns the webhooks of the bots that may act now: active
// accounts whose token is not revoked (revoking a bot silences its
// webhook too).
func (s *Store) BotWebhooks(ctx context.Context) ([]BotWebhook, error) {
	cols := "a." + strings.ReplaceAll(accountColumns, ", ", ", a.")
	rows, err := s.read.QueryContext(ctx, "SELECT "+cols+", w.url, w.secret FROM bot_webhooks w JOIN bots b ON b.account_id = w.account_id JOIN accounts a ON a.id = w.account_id WHERE b.token_hash IS NOT NULL AND a.deactivated IS NULL AND a.role = ? ORDER BY a.id", RoleBot)
	if err != nil {
		return nil, fmt.Errorf("bot webhooks: %w", err)
	}
	defer rows.Close()
	var out []BotWebhook
	for rows.Next() {
		var h BotWebhook
		h.Bot, err = scanAccount(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &h.URL, &h.Secret)...)
		}))
		if err != nil {
			return nil, fmt.Errorf("bot webhooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// IsMember reports whether user is in room.
func (s *Store) IsMember(ctx context.Context, room, user int64) (bool, error) {
	var is bool
	if err := s.read.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = ? AND user_id = ?)", room, user).Scan(&is); err != nil {
		return false, fmt.Errorf("member %d of room %d: %w", user, room, err)
	}
	return is, nil
}
