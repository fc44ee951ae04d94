package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Bots are accounts with RoleBot that an admin made: no password, a token
// kept as its SHA-256 only, and the rooms it may use as its memberships.

// ErrNotBot is returned when an account asked for as a bot is a person's.
var ErrNotBot = errors.New("the account is not a bot")

// Bot is a bot as the admin's list shows it.
type Bot struct {
	Account
	Prefix   string    // the token's first characters; "" once revoked
	HasToken bool      // false once revoked
	LastUsed time.Time // zero if never
	Rooms    []int64   // the rooms it is in, by id
	Webhook  string    // its outgoing webhook's URL; "" for none
	Avatar   string    // the emoji it shows in place of initials; "" for none
}

// CreateBot stores a new bot account named name (key is its name key, as
// for people: ErrNameTaken if another account has it), in the rooms given
// and no other (not the default room unless given), with the token whose
// SHA-256 is tokenHash.
func (s *Store) CreateBot(ctx context.Context, name, key string, rooms []int64, tokenHash []byte, prefix string, now time.Time) (Account, error) {
	a := Account{Name: name, NameKey: key, Role: RoleBot, Created: now}
	r, err := s.command(ctx, command{Op: opBot, Account: &a, Members: rooms, TokenHash: tokenHash, Value: prefix})
	if err != nil {
		if errors.Is(err, ErrNameTaken) {
			return Account{}, err
		}
		return Account{}, fmt.Errorf("create bot %q: %w", name, err)
	}
	return r.Account, nil
}

// createBot is CreateBot in tx; a.ID is the account's id, as for
// insertAccount.
func createBot(ctx context.Context, tx *sql.Tx, a Account, rooms []int64, tokenHash []byte, prefix string) (Account, error) {
	a, err := insertAccount(ctx, tx, a)
	if err != nil {
		return Account{}, err
	}
	// Every new account joins the default room by trigger
	// (accounts_join_lobby); a bot is only where it is granted.
	if _, err := tx.ExecContext(ctx, "DELETE FROM members WHERE user_id = ?", a.ID); err != nil {
		return Account{}, err
	}
	for _, room := range rooms {
		if _, err := addMember(ctx, tx, room, a.ID, a.Created.UnixMilli()); err != nil {
			return Account{}, fmt.Errorf("room %d: %w", room, err)
		}
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO bots (account_id, token_hash, prefix, created) VALUES (?, ?, ?, ?)", a.ID, tokenHash, prefix, a.Created.UnixMilli())
	return a, err
}

// BotByToken returns the active bot account whose token has this SHA-256,
// or ErrNotFound: a wrong, rotated or revoked token, or a deactivated bot.
func (s *Store) BotByToken(ctx context.Context, tokenHash []byte) (Account, error) {
	cols := "a." + strings.ReplaceAll(accountColumns, ", ", ", a.")
	find := func() (Account, error) {
		return scanAccount(s.read.QueryRowContext(ctx, "SELECT "+cols+" FROM bots b JOIN accounts a ON a.id = b.account_id WHERE b.token_hash = ? AND a.role = ? AND a.deactivated IS NULL", tokenHash, RoleBot))
	}
	a, err := find()
	if errors.Is(err, sql.ErrNoRows) && s.shared != nil {
		// A bot made, or given a token, through another node a moment
		// ago (see SessionByToken).
		s.shared.catchUp(ctx)
		a, err = find()
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("bot token: %w", ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("bot token: %w", err)
	}
	return a, nil
}

// SetBotToken gives bot id a new token (its SHA-256 and prefix), or with a
// nil tokenHash revokes the one it has: either way the old token opens
// nothing from the commit on. ErrNotBot if id is not a bot's account.
func (s *Store) SetBotToken(ctx context.Context, id int64, tokenHash []byte, prefix string) error {
	if tokenHash == nil {
		prefix = ""
	}
	if _, err := s.command(ctx, command{Op: opBotToken, AccountID: id, TokenHash: tokenHash, Value: prefix}); err != nil {
		return fmt.Errorf("bot %d token: %w", id, err)
	}
	return nil
}

// SetBotAvatar gives bot id an avatar (an emoji the caller checked), or
// takes it away with "". It is ErrNotBot for a person's account.
func (s *Store) SetBotAvatar(ctx context.Context, id int64, avatar string) error {
	if _, err := s.command(ctx, command{Op: opBotAvatar, AccountID: id, Value: avatar}); err != nil {
		return fmt.Errorf("bot avatar: %w", err)
	}
	return nil
}

// updatedOne runs an UPDATE in tx that changes one row of a bot's, or
// none: then the account is not a bot's (ErrNotBot).
func updatedOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotBot
	}
	return nil
}

// Avatar is account id's avatar ("" for none, or for no such account).
func (s *Store) Avatar(ctx context.Context, id int64) (string, error) {
	var a string
	err := s.read.QueryRowContext(ctx, "SELECT avatar FROM accounts WHERE id = ?", id).Scan(&a)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("avatar: %w", err)
	}
	return a, nil
}

// TouchBot records that bot id used its token at now.
func (s *Store) TouchBot(ctx context.Context, id int64, now time.Time) error {
	if _, err := s.write.ExecContext(ctx, "UPDATE bots SET last_used = ? WHERE account_id = ?", now.UnixMilli(), id); err != nil {
		return fmt.Errorf("touch bot %d: %w", id, err)
	}
	return nil
}

// Bots returns every bot, oldest first, with its rooms.
func (s *Store) Bots(ctx context.Context) ([]Bot, error) {
	cols := "a." + strings.ReplaceAll(accountColumns, ", ", ", a.")
	rows, err := s.read.QueryContext(ctx, "SELECT "+cols+", b.prefix, b.token_hash IS NOT NULL, b.last_used, (SELECT group_concat(room_id) FROM members WHERE user_id = a.id), coalesce((SELECT url FROM bot_webhooks WHERE account_id = a.id), ''), a.avatar FROM bots b JOIN accounts a ON a.id = b.account_id ORDER BY a.id")
	if err != nil {
		return nil, fmt.Errorf("bots: %w", err)
	}
	defer rows.Close()
	var out []Bot
	for rows.Next() {
		var (
			b     Bot
			used  sql.NullInt64
			rooms sql.NullString
		)
		b.Account, err = scanAccount(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &b.Prefix, &b.HasToken, &used, &rooms, &b.Webhook, &b.Avatar)...)
		}))
		if err != nil {
			return nil, fmt.Errorf("bots: %w", err)
		}
		if used.Valid {
			b.LastUsed = time.UnixMilli(used.Int64)
		}
		for _, v := range strings.Split(rooms.String, ",") {
			var id int64
			if _, err := fmt.Sscan(v, &id); err == nil {
				b.Rooms = append(b.Rooms, id)
			}
		}
		slices.Sort(b.Rooms)
		out = append(out, b)
	}
	return out, rows.Err()
}

// BotTokensVersion is a number that every change of a bot's token moves,
// whichever process makes it (a trigger keeps it).
func (s *Store) BotTokensVersion(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read.QueryRowContext(ctx, "SELECT n FROM bot_tokens_version WHERE id = 1").Scan(&n); err != nil {
		return 0, fmt.Errorf("bot tokens version: %w", err)
	}
	return n, nil
}

// BotTokens returns each bot's token hash now (nil once revoked), by
// account id.
func (s *Store) BotTokens(ctx context.Context) (map[int64][]byte, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT account_id, token_hash FROM bots")
	if err != nil {
		return nil, fmt.Errorf("bot tokens: %w", err)
	}
	defer rows.Close()
	out := make(map[int64][]byte)
	for rows.Next() {
		var (
			id   int64
			hash []byte
		)
		if err := rows.Scan(&id, &hash); err != nil {
			return nil, fmt.Errorf("bot tokens: %w", err)
		}
		out[id] = hash
	}
	return out, rows.Err()
}
