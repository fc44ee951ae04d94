package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Setting returns a stored setting, or ErrNotFound.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.read.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// SetSetting stores a setting, replacing any earlier value.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set setting %s: %w", key, err)
	}
	return nil
}

// SettingOr returns a stored setting, storing value first when it has
// none: of two callers at once, both get the one value that was stored.
func (s *Store) SettingOr(ctx context.Context, key, value string) (string, error) {
	var v string
	err := s.write.QueryRowContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = value RETURNING value`, key, value).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// Delete removes a message from history, or reports ErrNotFound.
func (s *Store) Delete(ctx context.Context, id int64) error {
	n, err := s.deleteCounted(ctx, "DELETE FROM messages WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete message %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete message %d: %w", id, ErrNotFound)
	}
	return nil
}

// deleteCounted runs a DELETE of messages in a transaction of its own and
// counts what it removed.
func (s *Store) deleteCounted(ctx context.Context, query string, args ...any) (int64, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, s.count.change(func() (int64, error) { return -n, tx.Commit() })
}

// counter is the number of stored messages. A count(*) takes tens of
// milliseconds at a million rows (ten times that on a Pi), and the dashboard
// and /metrics ask every second or so; so the database is counted once, on
// first use, and every write of the Store's changes the count under the same
// lock as its commit: a reader never sees the two disagree. (Rows changed
// behind NoChat's back, with the sqlite3 shell, are not seen until a
// restart.)
type counter struct {
	mu    sync.Mutex
	known bool
	n     int64
}

// change runs a commit that adds delta messages (negative: removes) and
// counts them if it succeeded. Only the COMMIT runs under the lock: a
// write transaction holds the one write connection, so taking the lock
// before it could deadlock against another transaction waiting to commit.
func (c *counter) change(commit func() (delta int64, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delta, err := commit()
	if err == nil {
		c.n += delta
	}
	return err
}

// Count returns the number of stored messages.
func (s *Store) Count(ctx context.Context) (int64, error) {
	s.count.mu.Lock()
	defer s.count.mu.Unlock()
	if !s.count.known {
		// Writes wait on the lock meanwhile, so none is counted twice.
		if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&s.count.n); err != nil {
			return 0, fmt.Errorf("count messages: %w", err)
		}
		s.count.known = true
	}
	return s.count.n, nil
}

// Size returns the bytes the database takes on disk: the file and its WAL.
func (s *Store) Size() int64 {
	var total int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.path + suffix); err == nil {
			total += fi.Size()
		}
	}
	return total
}
