package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"golang.org/x/crypto/acme/autocert"
)

// Limits of one ACME cache entry. autocert's keys are a host name and a
// suffix, its values a PEM key and chain of a few KiB: these bounds only
// keep a bug from filling the database.
const (
	maxACMEKey  = 512
	maxACMEData = 1 << 20
)

// ACMECache is autocert's cache in the database: certificates obtained
// with -acme-domain live in the one file, and backups include them.
type ACMECache struct{ s *Store }

// ACMECache is the store's ACME cache.
func (s *Store) ACMECache() *ACMECache { return &ACMECache{s: s} }

var _ autocert.Cache = (*ACMECache)(nil)

// Get returns the data stored under key, or autocert.ErrCacheMiss.
func (c *ACMECache) Get(ctx context.Context, key string) ([]byte, error) {
	var data []byte
	err := c.s.read.QueryRowContext(ctx, "SELECT data FROM acme_cache WHERE key = ?", key).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	if err != nil {
		return nil, fmt.Errorf("acme cache get %.60q: %w", key, err)
	}
	return data, nil
}

// Put stores data under key, replacing what was there.
func (c *ACMECache) Put(ctx context.Context, key string, data []byte) error {
	if len(key) > maxACMEKey || len(data) > maxACMEData {
		return fmt.Errorf("acme cache put %.60q: %d bytes under a %d-byte key, the limits are %d and %d", key, len(data), len(key), maxACMEData, maxACMEKey)
	}
	_, err := c.s.write.ExecContext(ctx, `INSERT INTO acme_cache (key, data, updated) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated = excluded.updated`,
		key, data, c.s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("acme cache put %.60q: %w", key, err)
	}
	return nil
}

// Delete removes key; a key that is not there is no error.
func (c *ACMECache) Delete(ctx context.Context, key string) error {
	if _, err := c.s.write.ExecContext(ctx, "DELETE FROM acme_cache WHERE key = ?", key); err != nil {
		return fmt.Errorf("acme cache delete %.60q: %w", key, err)
	}
	return nil
}

// Keys lists the cache's keys, in order.
func (c *ACMECache) Keys(ctx context.Context) ([]string, error) {
	rows, err := c.s.read.QueryContext(ctx, "SELECT key FROM acme_cache ORDER BY key")
	if err != nil {
		return nil, fmt.Errorf("acme cache keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("acme cache keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}
