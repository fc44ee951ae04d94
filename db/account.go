package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Roles an account can have.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleBot    = "bot"
)

// SettingSetupToken is the setting that holds the SHA-256 (hex) of the
// one-time set-up link's token while no admin account exists.
const SettingSetupToken = "setup_token_hash"

// ErrNameTaken is returned when an account's name, as names are compared,
// is another account's already.
var ErrNameTaken = errors.New("the name is taken")

// ErrSetupDone is returned when the first admin account is asked for once
// an admin exists, or with a set-up token that is not (or no longer) the
// stored one.
var ErrSetupDone = errors.New("the set-up link is used or wrong")

// Account is a person (or a bot) who signs in.
type Account struct {
	ID           int64
	Name         string // as others see it
	NameKey      string // as names are compared: unique
	PasswordHash string
	Role         string // RoleAdmin, RoleMember or RoleBot
	Created      time.Time
	Deactivated  bool
	Banned       bool // by an admin; a banned account is deactivated too
}

const accountColumns = "id, name, name_key, password_hash, role, created, deactivated, banned"

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var (
		a           Account
		created     int64
		deactivated sql.NullInt64
		banned      sql.NullInt64
	)
	if err := row.Scan(&a.ID, &a.Name, &a.NameKey, &a.PasswordHash, &a.Role, &created, &deactivated, &banned); err != nil {
		return Account{}, err
	}
	a.Created, a.Deactivated, a.Banned = time.UnixMilli(created), deactivated.Valid, banned.Valid
	return a, nil
}

// AccountByNameKey returns the account whose name compares as key, or
// ErrNotFound.
func (s *Store) AccountByNameKey(ctx context.Context, key string) (Account, error) {
	a, err := scanAccount(s.read.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM accounts WHERE name_key = ?", key))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account: %w", ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account: %w", err)
	}
	return a, nil
}

// AccountByName returns the account named exactly name, or ErrNotFound.
// Sign-in asks it for an account that RekeyAccounts left on its old key
// (its name now compares as another's), which its key no longer finds.
// Names are not indexed: it reads the accounts, a few hundred at most.
func (s *Store) AccountByName(ctx context.Context, name string) (Account, error) {
	a, err := scanAccount(s.read.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM accounts WHERE name = ? ORDER BY id LIMIT 1", name))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account %q: %w", name, err)
	}
	return a, nil
}

// AccountByID returns the account with this id, or ErrNotFound.
func (s *Store) AccountByID(ctx context.Context, id int64) (Account, error) {
	a, err := scanAccount(s.read.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM accounts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account %d: %w", id, err)
	}
	return a, nil
}

// HasAdmin reports whether an active admin account exists.
func (s *Store) HasAdmin(ctx context.Context) (bool, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM accounts WHERE role = ? AND deactivated IS NULL", RoleAdmin).Scan(&n); err != nil {
		return false, fmt.Errorf("admin accounts: %w", err)
	}
	return n > 0, nil
}

// CreateFirstAdmin creates the first admin account through the set-up
// link, if tokenHash (hex SHA-256) is the stored set-up token: it spends
// the token and inserts the account, in one transaction that also checks
// that no admin account exists. Anything else is ErrSetupDone, so two
// requests with one link cannot both succeed; a name that is taken is
// ErrNameTaken. On a cluster the token is this node's own, and the
// command every node applies spends every node's.
func (s *Store) CreateFirstAdmin(ctx context.Context, a Account, tokenHash string) (Account, error) {
	stored, err := s.Setting(ctx, SettingSetupToken)
	switch {
	case errors.Is(err, ErrNotFound):
		return Account{}, fmt.Errorf("first admin: %w", ErrSetupDone)
	case err != nil:
		return Account{}, fmt.Errorf("first admin: %w", err)
	case stored != tokenHash:
		return Account{}, fmt.Errorf("first admin: %w", ErrSetupDone)
	}
	return s.createAccount(ctx, command{Op: opFirstAdmin, Account: &a})
}

// firstAdmin inserts a as the first admin account, and spends the set-up
// token; ErrSetupDone if an admin account exists (even a deactivated one).
func firstAdmin(ctx context.Context, tx *sql.Tx, a Account) (Account, error) {
	var admins int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM accounts WHERE role = ?", RoleAdmin).Scan(&admins); err != nil {
		return Account{}, fmt.Errorf("first admin: %w", err)
	}
	if admins > 0 {
		return Account{}, fmt.Errorf("first admin: %w", ErrSetupDone)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM settings WHERE key = ?", SettingSetupToken); err != nil {
		return Account{}, fmt.Errorf("first admin: %w", err)
	}
	a.Role = RoleAdmin
	return insertAccount(ctx, tx, a)
}

// createAccount runs c, a command that creates an account.
func (s *Store) createAccount(ctx context.Context, c command) (Account, error) {
	r, err := s.command(ctx, c)
	if err != nil {
		return Account{}, fmt.Errorf("create account %q: %w", c.Account.Name, err)
	}
	return r.Account, nil
}

// insertAccount stores a new account and returns it with its id: a.ID if
// set (a cluster's log names it, and the account is marked as the log's),
// else the next one.
func insertAccount(ctx context.Context, tx *sql.Tx, a Account) (Account, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, name_key, password_hash, role, created, from_log)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, nullID(a.ID), a.Name, a.NameKey, a.PasswordHash, a.Role, a.Created.UnixMilli(), a.ID != 0)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: accounts.name_key") {
			return Account{}, fmt.Errorf("account %q: %w", a.Name, ErrNameTaken)
		}
		return Account{}, fmt.Errorf("account %q: %w", a.Name, err)
	}
	if a.ID, err = res.LastInsertId(); err != nil {
		return Account{}, fmt.Errorf("account %q: %w", a.Name, err)
	}
	return a, nil
}

// RenameAccount gives an account a new name, with its comparison key;
// ErrNameTaken if the key is another account's, ErrNotFound if there is no
// such account. Its messages show the new name from then on (see columns
// in message.go): they are stored with the account, not only the name.
func (s *Store) RenameAccount(ctx context.Context, id int64, name, key string) error {
	_, err := s.command(ctx, command{Op: opRename, AccountID: id, Account: &Account{Name: name, NameKey: key}})
	if err != nil {
		return fmt.Errorf("rename account %d to %q: %w", id, name, err)
	}
	return nil
}

// renameAccount is RenameAccount in tx.
func renameAccount(ctx context.Context, tx *sql.Tx, id int64, name, key string) error {
	res, err := tx.ExecContext(ctx, "UPDATE accounts SET name = ?, name_key = ? WHERE id = ?", name, key, id)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: accounts.name_key") {
			return ErrNameTaken
		}
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ChangePassword replaces an account's password hash and ends every
// session of the account but keep, in one transaction: a new password
// never stands beside the sessions it was meant to end. It returns the
// ids of the sessions it ended.
func (s *Store) ChangePassword(ctx context.Context, id int64, hash string, keep int64) ([]int64, error) {
	r, err := s.command(ctx, command{Op: opPassword, AccountID: id, Hash: hash, Keep: keep})
	if err != nil {
		return nil, fmt.Errorf("account %d password: %w", id, err)
	}
	return r.Ended, nil
}

func changePassword(ctx context.Context, tx *sql.Tx, id int64, hash string, keep int64) ([]int64, error) {
	res, err := tx.ExecContext(ctx, "UPDATE accounts SET password_hash = ? WHERE id = ?", hash, id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotFound
	}
	return deleteSessionsOf(ctx, tx, id, keep)
}

// SessionsOf returns an account's live sessions, newest first.
func (s *Store) SessionsOf(ctx context.Context, accountID int64, now time.Time) ([]Session, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE kind = ? AND account_id = ? AND expires > ? ORDER BY created DESC",
		SessionAccount, accountID, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sessions of %d: %w", accountID, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sessions of %d: %w", accountID, err)
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// DeleteSessionOf ends one session of an account, by the session's id;
// ErrNotFound if the account has no such session.
func (s *Store) DeleteSessionOf(ctx context.Context, accountID, id int64) error {
	_, err := s.command(ctx, command{Op: opEndSession, AccountID: accountID, ID: id})
	if err != nil {
		return fmt.Errorf("end session %d: %w", id, err)
	}
	return nil
}

// DeleteSessionsOf ends every session of an account but the one with id
// keep (0 to end them all), and returns the ids of those it ended.
func (s *Store) DeleteSessionsOf(ctx context.Context, accountID, keep int64) ([]int64, error) {
	r, err := s.command(ctx, command{Op: opEndSessions, AccountID: accountID, Keep: keep})
	if err != nil {
		return nil, fmt.Errorf("end sessions of %d: %w", accountID, err)
	}
	return r.Ended, nil
}

// deleteSessionsOf is DeleteSessionsOf in tx.
func deleteSessionsOf(ctx context.Context, tx *sql.Tx, accountID, keep int64) ([]int64, error) {
	return column[int64](tx.QueryContext(ctx, "DELETE FROM sessions WHERE kind = ? AND account_id = ? AND id != ? RETURNING id", SessionAccount, accountID, keep))
}

// column reads the one column of a query's rows into a slice, and closes
// them; it takes QueryContext's results as they come.
func column[T any](rows *sql.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CreateAccount stores a new account; ErrNameTaken if its name key is
// another account's.
func (s *Store) CreateAccount(ctx context.Context, a Account) (Account, error) {
	return s.createAccount(ctx, command{Op: opAccount, Account: &a})
}

// DeleteSetting removes a setting, if it is there.
func (s *Store) DeleteSetting(ctx context.Context, key string) error {
	if _, err := s.write.ExecContext(ctx, "DELETE FROM settings WHERE key = ?", key); err != nil {
		return fmt.Errorf("delete setting %s: %w", key, err)
	}
	return nil
}

// KeyConflict is an account that RekeyAccounts left on its old name key
// because its new key is another account's: under the new rule the two
// names compare as one, so the people may look alike and one may want
// renaming.
type KeyConflict struct {
	ID        int64
	Name      string
	OtherID   int64 // the account that has the key
	OtherName string
}

// RekeyAccounts recomputes every account's name key with key (the
// comparison rule, chat.NameKey, which db may not import) and stores the
// keys that changed, in one transaction; changed is how many. Where two
// accounts now want one key, the one that already has it keeps it, or else
// the older (lower id) gets it; the other keeps its old key and is returned
// in conflicts. A name key refuses is left on its old key: a name accepted
// once is not refused at start-up.
func (s *Store) RekeyAccounts(ctx context.Context, key func(name string) (string, error)) (changed int, conflicts []KeyConflict, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("rekey accounts: %w", err)
	}
	defer tx.Rollback()
	type entry struct {
		id             int64
		name, old, key string
	}
	var accounts []entry
	rows, err := tx.QueryContext(ctx, "SELECT id, name, name_key FROM accounts ORDER BY id")
	if err != nil {
		return 0, nil, fmt.Errorf("rekey accounts: %w", err)
	}
	for rows.Next() {
		var a entry
		if err := rows.Scan(&a.id, &a.name, &a.old); err != nil {
			rows.Close()
			return 0, nil, fmt.Errorf("rekey accounts: %w", err)
		}
		if a.key, err = key(a.name); err != nil || a.key == "" {
			a.key = a.old
		}
		accounts = append(accounts, a)
	}
	if err := rows.Close(); err != nil {
		return 0, nil, fmt.Errorf("rekey accounts: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("rekey accounts: %w", err)
	}

	// Settle who has which key. Sending a loser back to its old key can
	// make it collide with an account that moved onto that key, so repeat
	// until no key is held twice; each pass settles one account for good.
	for {
		holder := make(map[string]int, len(accounts))
		loser, winner := -1, -1
		for i, a := range accounts {
			j, ok := holder[a.key]
			if !ok {
				holder[a.key] = i
				continue
			}
			// j < i: j is the older. The one that already had the key
			// keeps it; else the older does.
			loser, winner = i, j
			if a.old == a.key && accounts[j].old != a.key {
				loser, winner = j, i
			}
			break
		}
		if loser < 0 {
			break
		}
		l, w := accounts[loser], accounts[winner]
		conflicts = append(conflicts, KeyConflict{ID: l.id, Name: l.name, OtherID: w.id, OtherName: w.name})
		accounts[loser].key = l.old
	}

	// Moving keys in two steps, through a placeholder no real key can be
	// (NameKey never holds NUL), so that one account may take the key
	// another leaves without tripping UNIQUE on the way.
	for _, a := range accounts {
		if a.key == a.old {
			continue
		}
		if _, err := tx.ExecContext(ctx, "UPDATE accounts SET name_key = ? WHERE id = ?", fmt.Sprintf("\x00rekey %d", a.id), a.id); err != nil {
			return 0, nil, fmt.Errorf("rekey account %d: %w", a.id, err)
		}
		changed++
	}
	for _, a := range accounts {
		if a.key == a.old {
			continue
		}
		if _, err := tx.ExecContext(ctx, "UPDATE accounts SET name_key = ? WHERE id = ?", a.key, a.id); err != nil {
			return 0, nil, fmt.Errorf("rekey account %d: %w", a.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("rekey accounts: %w", err)
	}
	return changed, conflicts, nil
}
