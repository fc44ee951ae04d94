package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// What admins do to people's accounts: their roles, deactivation, bans
// and the addresses a ban refuses, and one-time password-reset links.

// SessionReset is the kind of a password-reset link's token: a session
// row that opens no page, only the reset form, once.
const SessionReset = "reset"

// ErrLastAdmin refuses a change that would leave no active admin account.
var ErrLastAdmin = errors.New("it is the last active admin account")

// ErrBanned refuses to reactivate a banned account: it is unbanned first.
var ErrBanned = errors.New("the account is banned")

// PersonInfo is an account as the admin's list of people shows it.
type PersonInfo struct {
	Account
	LastSeen time.Time // the latest use of any of its sessions (a bot's: of its token or a webhook); zero for none
	Messages int64     // stored messages
}

// People returns every account, oldest first, with when it was last seen
// (a bot, which has no session: when its token or a webhook posting as it
// was last used) and how many messages it has stored.
func (s *Store) People(ctx context.Context) ([]PersonInfo, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT a.id, a.name, a.name_key, a.password_hash, a.role, a.created, a.deactivated, a.banned,
		max(coalesce(a.last_seen, 0), coalesce((SELECT max(last_seen) FROM sessions WHERE kind = ? AND account_id = a.id), 0),
			coalesce((SELECT last_used FROM bots WHERE account_id = a.id), 0), coalesce((SELECT max(last_used) FROM webhooks WHERE account_id = a.id), 0)),
		(SELECT count(*) FROM messages WHERE user_id = a.id)
		FROM accounts a ORDER BY a.id`, SessionAccount)
	if err != nil {
		return nil, fmt.Errorf("people: %w", err)
	}
	defer rows.Close()
	var out []PersonInfo
	for rows.Next() {
		var (
			p    PersonInfo
			seen sql.NullInt64
		)
		var err error
		p.Account, err = scanAccount(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &seen, &p.Messages)...)
		}))
		if err != nil {
			return nil, fmt.Errorf("people: %w", err)
		}
		if seen.Int64 > 0 {
			p.LastSeen = time.UnixMilli(seen.Int64)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// scanFunc is a Scan method on its own, for a row that has more columns
// than scanAccount reads.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// inTx runs f in a write transaction and commits it if f returns nil.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// accountIn reads an account inside a transaction; ErrNotFound if there
// is none.
func accountIn(ctx context.Context, tx *sql.Tx, id int64) (Account, error) {
	a, err := scanAccount(tx.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM accounts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	return a, err
}

// otherAdmins counts the active admin accounts other than id.
func otherAdmins(ctx context.Context, tx *sql.Tx, id int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM accounts WHERE role = ? AND deactivated IS NULL AND id != ?", RoleAdmin, id).Scan(&n)
	return n, err
}

// SetRole gives an account a role, and returns the account as it was. It
// refuses, with ErrLastAdmin, to take the admin role from the last active
// admin account.
func (s *Store) SetRole(ctx context.Context, id int64, role string) (Account, error) {
	r, err := s.command(ctx, command{Op: opRole, AccountID: id, Kind: role})
	if err != nil {
		return Account{}, fmt.Errorf("role of account %d: %w", id, err)
	}
	return r.Account, nil
}

// setRole is SetRole in tx; it returns the account as it was.
func setRole(ctx context.Context, tx *sql.Tx, id int64, role string) (Account, error) {
	a, err := accountIn(ctx, tx, id)
	if err != nil {
		return Account{}, err
	}
	if a.Role == RoleAdmin && role != RoleAdmin && !a.Deactivated {
		n, err := otherAdmins(ctx, tx, id)
		if err != nil {
			return Account{}, err
		}
		if n == 0 {
			return Account{}, ErrLastAdmin
		}
	}
	_, err = tx.ExecContext(ctx, "UPDATE accounts SET role = ? WHERE id = ?", role, id)
	return a, err
}

// endAccount deactivates an account (at now, unless it is already) and
// deletes every session of it, password-reset links too, and returns the
// ids of the sign-in sessions it ended. It refuses, with ErrLastAdmin, the
// last active admin account.
func endAccount(ctx context.Context, tx *sql.Tx, a Account, now time.Time) ([]int64, error) {
	if a.Role == RoleAdmin && !a.Deactivated {
		n, err := otherAdmins(ctx, tx, a.ID)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrLastAdmin
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE accounts SET deactivated = coalesce(deactivated, ?) WHERE id = ?", now.UnixMilli(), a.ID); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, "DELETE FROM sessions WHERE account_id = ? RETURNING id, kind", a.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		var kind string
		if err := rows.Scan(&id, &kind); err != nil {
			return nil, err
		}
		if kind == SessionAccount {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

// Deactivate stops an account from signing in: in one transaction it
// marks the account and deletes its sessions, and returns the account as
// it was and the ids of the sessions it ended (their sockets are the
// caller's to close). ErrLastAdmin for the last active admin account.
func (s *Store) Deactivate(ctx context.Context, id int64, now time.Time) (Account, []int64, error) {
	r, err := s.command(ctx, command{Op: opDeactivate, AccountID: id, At: now.UnixMilli()})
	if err != nil {
		return Account{}, nil, fmt.Errorf("deactivate account %d: %w", id, err)
	}
	return r.Account, r.Ended, nil
}

// deactivate is Deactivate in tx; it returns the account as it was.
func deactivate(ctx context.Context, tx *sql.Tx, id int64, now time.Time) (Account, []int64, error) {
	a, err := accountIn(ctx, tx, id)
	if err != nil {
		return Account{}, nil, err
	}
	ended, err := endAccount(ctx, tx, a, now)
	return a, ended, err
}

// Reactivate lets a deactivated account sign in again; ErrBanned for a
// banned one, which is unbanned first.
func (s *Store) Reactivate(ctx context.Context, id int64) (Account, error) {
	r, err := s.command(ctx, command{Op: opReactivate, AccountID: id})
	if err != nil {
		return Account{}, fmt.Errorf("reactivate account %d: %w", id, err)
	}
	return r.Account, nil
}

// reactivate is Reactivate in tx; it returns the account as it was.
func reactivate(ctx context.Context, tx *sql.Tx, id int64) (Account, error) {
	a, err := accountIn(ctx, tx, id)
	if err != nil {
		return Account{}, err
	}
	if a.Banned {
		return Account{}, ErrBanned
	}
	_, err = tx.ExecContext(ctx, "UPDATE accounts SET deactivated = NULL WHERE id = ?", id)
	return a, err
}

// Ban deactivates an account (as Deactivate), marks it banned and refuses
// the given addresses (chat.AddressKey) and those its sessions were
// signed in from, but never those in spare (the acting admin's own), all
// in one transaction. It returns the account as it was, the ids of the
// sessions it ended, and every address now refused for it.
func (s *Store) Ban(ctx context.Context, id int64, addresses, spare []string, now time.Time) (Account, []int64, []string, error) {
	r, err := s.command(ctx, command{Op: opBan, AccountID: id, Addresses: addresses, Spare: spare, At: now.UnixMilli()})
	if err != nil {
		return Account{}, nil, nil, fmt.Errorf("ban account %d: %w", id, err)
	}
	return r.Account, r.Ended, r.Change.Banned, nil
}

// ban is Ban in tx; it returns the account as it was.
func ban(ctx context.Context, tx *sql.Tx, id int64, addresses, spare []string, now time.Time) (Account, []int64, []string, error) {
	a, err := accountIn(ctx, tx, id)
	if err != nil {
		return Account{}, nil, nil, err
	}
	// The sessions' addresses, read before endAccount deletes them.
	signedIn, err := column[string](tx.QueryContext(ctx, "SELECT DISTINCT address FROM sessions WHERE account_id = ? AND address != ''", id))
	if err != nil {
		return Account{}, nil, nil, err
	}
	addresses = append(slices.Clip(addresses), signedIn...)
	ended, err := endAccount(ctx, tx, a, now)
	if err != nil {
		return Account{}, nil, nil, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE accounts SET banned = coalesce(banned, ?) WHERE id = ?", now.UnixMilli(), id); err != nil {
		return Account{}, nil, nil, err
	}
	for _, addr := range addresses {
		if addr == "" || slices.Contains(spare, addr) {
			continue
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO bans (address, account_id, at) VALUES (?, ?, ?) ON CONFLICT (address) DO NOTHING", addr, id, now.UnixMilli()); err != nil {
			return Account{}, nil, nil, err
		}
	}
	all, err := bannedOf(ctx, tx, id)
	return a, ended, all, err
}

// bannedOf lists the addresses refused for an account's ban.
func bannedOf(ctx context.Context, tx *sql.Tx, id int64) ([]string, error) {
	return column[string](tx.QueryContext(ctx, "SELECT address FROM bans WHERE account_id = ? ORDER BY address", id))
}

// Unban lifts an account's ban and the refusal of its addresses, and
// returns the account and the addresses it freed. The account stays
// deactivated until it is reactivated.
func (s *Store) Unban(ctx context.Context, id int64) (Account, []string, error) {
	r, err := s.command(ctx, command{Op: opUnban, AccountID: id})
	if err != nil {
		return Account{}, nil, fmt.Errorf("unban account %d: %w", id, err)
	}
	return r.Account, r.Change.Unbanned, nil
}

// unban is Unban in tx; it returns the account as it was.
func unban(ctx context.Context, tx *sql.Tx, id int64) (Account, []string, error) {
	a, err := accountIn(ctx, tx, id)
	if err != nil {
		return Account{}, nil, err
	}
	freed, err := bannedOf(ctx, tx, id)
	if err != nil {
		return Account{}, nil, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM bans WHERE account_id = ?", id); err != nil {
		return Account{}, nil, err
	}
	_, err = tx.ExecContext(ctx, "UPDATE accounts SET banned = NULL WHERE id = ?", id)
	return a, freed, err
}

// BannedAddresses returns every address a ban refuses.
func (s *Store) BannedAddresses(ctx context.Context) ([]string, error) {
	out, err := column[string](s.read.QueryContext(ctx, "SELECT address FROM bans"))
	if err != nil {
		return nil, fmt.Errorf("banned addresses: %w", err)
	}
	return out, nil
}

// BannedAmong returns which of addresses a ban refuses, as the database
// has them now.
func (s *Store) BannedAmong(ctx context.Context, addresses []string) ([]string, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(addresses)
	if err != nil {
		return nil, fmt.Errorf("banned among %d addresses: %w", len(addresses), err)
	}
	out, err := column[string](s.read.QueryContext(ctx, "SELECT address FROM bans WHERE address IN (SELECT value FROM json_each(?))", string(list)))
	if err != nil {
		return nil, fmt.Errorf("banned among %d addresses: %w", len(addresses), err)
	}
	return out, nil
}

// MessagesOf returns the oldest limit messages an account stored with ids
// above after, oldest first: what a ban that deletes them deletes next
// (chat's Hub.DeleteMessagesOf), as deletions of the log, a batch at a
// time.
func (s *Store) MessagesOf(ctx context.Context, accountID, after int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.user_id = ? AND messages.id > ? ORDER BY messages.id LIMIT ?", accountID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of %d: %w", accountID, err)
	}
	return msgs, nil
}

// deleteMessagesOf applies a cluster log's opDeleteMessagesOf in tx: how
// a ban deleted a person's messages before each deletion was an event of
// the log (see MessagesOf). A log written then still holds such commands,
// and a node that replays it must apply them alike.
func deleteMessagesOf(ctx context.Context, tx *sql.Tx, accountID int64) (map[int64][]int64, error) {
	rows, err := tx.QueryContext(ctx, "DELETE FROM messages WHERE user_id = ? RETURNING id, room_id", accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byRoom := make(map[int64][]int64)
	for rows.Next() {
		var id, room int64
		if err := rows.Scan(&id, &room); err != nil {
			return nil, err
		}
		byRoom[room] = append(byRoom[room], id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, ids := range byRoom {
		slices.Sort(ids)
	}
	return byRoom, nil
}

// ResetPassword spends a password-reset link's token: in one transaction
// it deletes the token (so it works once), sets the account's password
// hash and ends every session of the account, and returns the account and
// the ids of the sign-in sessions it ended. ErrNotFound for a token that
// is unknown, used or expired, or whose account is deactivated.
func (s *Store) ResetPassword(ctx context.Context, tokenHash []byte, hash string, now time.Time) (Account, []int64, error) {
	r, err := s.command(ctx, command{Op: opReset, TokenHash: tokenHash, Hash: hash, At: now.UnixMilli()})
	if err != nil {
		return Account{}, nil, fmt.Errorf("reset password: %w", err)
	}
	return r.Account, r.Ended, nil
}

func resetPassword(ctx context.Context, tx *sql.Tx, tokenHash []byte, hash string, now time.Time) (Account, []int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, "DELETE FROM sessions WHERE token_hash = ? AND kind = ? AND expires > ? RETURNING account_id",
		tokenHash, SessionReset, now.UnixMilli()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, nil, ErrNotFound
	}
	if err != nil {
		return Account{}, nil, err
	}
	acct, err := accountIn(ctx, tx, id)
	if err != nil {
		return Account{}, nil, err
	}
	if acct.Deactivated {
		return Account{}, nil, ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, "UPDATE accounts SET password_hash = ? WHERE id = ?", hash, id); err != nil {
		return Account{}, nil, err
	}
	ended, err := deleteSessionsOf(ctx, tx, id, 0)
	return acct, ended, err
}
