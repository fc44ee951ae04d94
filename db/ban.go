package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// An address ban refuses an address (by chat.AddressKey) with no account
// to ban: a guest's, banned from the dashboard's list of connections.
// An account's ban refuses its addresses too (Ban); both kinds are rows of
// one table, and either kind's address is freed one at a time here
// (UnbanAddress), as when a banned person shared the address of a
// makerspace's router.

// ErrAddressBanned refuses to ban an address a ban refuses already.
var ErrAddressBanned = errors.New("the address is banned already")

// AddressBan is a refused address as the dashboard lists it.
type AddressBan struct {
	Address   string // chat.AddressKey: an IPv4 address or an IPv6 /64
	AccountID int64  // the banned account that brought it; 0 for an address banned on its own
	Name      string // that account's name, or the guest's name when the address was banned
	At        time.Time
}

// BanAddress refuses address (a chat.AddressKey), banned for a guest
// named name (for the list; it may be empty). It answers
// ErrAddressBanned if a ban refuses the address already.
func (s *Store) BanAddress(ctx context.Context, address, name string, now time.Time) error {
	c := command{Op: opBanAddress, Addresses: []string{address}, Value: name, At: now.UnixMilli()}
	if _, err := s.command(ctx, c); err != nil {
		return fmt.Errorf("ban address %s: %w", address, err)
	}
	return nil
}

// banAddress is BanAddress in tx: what it changed, for the other nodes.
func banAddress(ctx context.Context, tx *sql.Tx, address, name string, at int64) (*AccountChange, error) {
	res, err := tx.ExecContext(ctx, "INSERT INTO bans (address, name, at) VALUES (?, ?, ?) ON CONFLICT (address) DO NOTHING", address, name, at)
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrAddressBanned
	}
	return &AccountChange{Ban: true, Banned: []string{address}}, nil
}

// UnbanAddress stops refusing address, whichever ban brought it; an
// account banned stays banned, its other addresses refused. It answers
// ErrNotFound if no ban refuses the address.
func (s *Store) UnbanAddress(ctx context.Context, address string) error {
	if _, err := s.command(ctx, command{Op: opUnbanAddress, Addresses: []string{address}}); err != nil {
		return fmt.Errorf("unban address %s: %w", address, err)
	}
	return nil
}

// unbanAddress is UnbanAddress in tx.
func unbanAddress(ctx context.Context, tx *sql.Tx, address string) (*AccountChange, error) {
	freed, err := column[string](tx.QueryContext(ctx, "DELETE FROM bans WHERE address = ? RETURNING address", address))
	if err != nil {
		return nil, err
	}
	if len(freed) == 0 {
		return nil, ErrNotFound
	}
	return &AccountChange{Unbanned: freed}, nil
}

// AddressBanOf is the ban that refuses address, or ErrNotFound.
func (s *Store) AddressBanOf(ctx context.Context, address string) (AddressBan, error) {
	var b AddressBan
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT bans.address, coalesce(bans.account_id, 0),
		CASE WHEN accounts.id IS NULL THEN bans.name ELSE accounts.name END, bans.at
		FROM bans LEFT JOIN accounts ON accounts.id = bans.account_id WHERE bans.address = ?`, address).Scan(&b.Address, &b.AccountID, &b.Name, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return AddressBan{}, fmt.Errorf("address ban %s: %w", address, ErrNotFound)
	}
	if err != nil {
		return AddressBan{}, fmt.Errorf("address ban %s: %w", address, err)
	}
	b.At = time.UnixMilli(at)
	return b, nil
}

// AddressBans lists the refused addresses, the newest ban first, at most
// limit of them, and how many there are in all.
func (s *Store) AddressBans(ctx context.Context, limit int) ([]AddressBan, int, error) {
	var total int
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM bans").Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("address bans: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, addressBansSQL, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("address bans: %w", err)
	}
	defer rows.Close()
	var out []AddressBan
	for rows.Next() {
		var b AddressBan
		var at int64
		if err := rows.Scan(&b.Address, &b.AccountID, &b.Name, &at); err != nil {
			return nil, 0, fmt.Errorf("address bans: %w", err)
		}
		b.At = time.UnixMilli(at)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("address bans: %w", err)
	}
	// A ban made between the two reads is counted and not listed, or
	// listed and not counted: the next refresh has both.
	return out, max(total, len(out)), nil
}

// addressBansSQL reads the newest bans from the bans_newest index.
const addressBansSQL = `SELECT bans.address, coalesce(bans.account_id, 0),
	CASE WHEN accounts.id IS NULL THEN bans.name ELSE accounts.name END, bans.at
	FROM bans INDEXED BY bans_newest LEFT JOIN accounts ON accounts.id = bans.account_id
	ORDER BY bans.at DESC, bans.address LIMIT ?`
