// Package db is NoChat's storage: one SQLite file in WAL mode, opened through
// the pure-Go modernc.org/sqlite driver. It owns the schema (embedded
// migrations tracked by PRAGMA user_version), the single writer that
// group-commits messages, and the read queries.
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver the read pool uses
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// Durability is SQLite's synchronous setting for the write connection.
type Durability string

// Durability levels. Full survives power loss (an SD card unplugged mid-write);
// Normal may lose the last commits on power loss but never corrupts the file.
const (
	Full   Durability = "full"
	Normal Durability = "normal"
)

// ParseDurability accepts "full" or "normal", in any case.
func ParseDurability(s string) (Durability, error) {
	switch d := Durability(strings.ToLower(s)); d {
	case Full, Normal:
		return d, nil
	}
	return "", fmt.Errorf("durability %q: want full or normal", s)
}

// Options tune Open. The zero value is safe: full durability.
type Options struct {
	Durability Durability
	ReadConns  int // size of the read-only pool; 0 means one per CPU, at least 2

	// DedupWindow is how long a sender's client id (a nochat.v1 cid or a
	// REST Idempotency-Key) names its send: within it, a draft from the
	// same sender with the same id is that send again. 0 means
	// DefaultDedupWindow.
	DedupWindow time.Duration
	// Now is the clock that stamps messages and judges the window; nil
	// means time.Now. Tests set it to move time without waiting.
	Now func() time.Time
	// Log receives progress of long migrations (building the search
	// index); nil discards it.
	Log *slog.Logger

	// CheckpointAfter is the WAL size, in bytes, past which a commit has
	// the checkpointer copy the WAL into the database (PASSIVE, off the
	// writer's commit); 0 means DefaultCheckpointAfter.
	CheckpointAfter int64
	// CheckpointIdle is how long without a commit before the WAL file is
	// truncated; 0 means DefaultCheckpointIdle.
	CheckpointIdle time.Duration
}

// DefaultDedupWindow is how long a client id names its send, by default. A
// retry follows a reconnect: seconds later, or the next morning for a phone
// that slept with a message still queued in the page. A day covers both.
const DefaultDedupWindow = 24 * time.Hour

// Store is the database: one write connection, owned by the Writer, a pool
// of read-only connections that never block it (WAL), and a connection that
// checkpoints the WAL off the writer's commit (checkpoint.go).
type Store struct {
	path  string
	write *sql.DB
	read  *sql.DB

	// Prepared on the write connection, used in every Insert: stmts[k]
	// inserts, and looks up the cids of, 1<<k messages (see chunkStmts).
	stmts [chunkSizes]chunkStmts
	// insertAtStmt inserts one message under an id a replicated log gave.
	insertAtStmt *sql.Stmt
	// indexStmt adds a range of ids' messages to the search index.
	indexStmt *sql.Stmt
	// change holds applyChange's statements.
	change changeStmts

	ckpt *checkpointer // WAL checkpoints, off the writer's commit

	pruned atomic.Int64 // messages removed by Prune since Open
	names  atomic.Int64 // NamesVersion
	count  counter      // messages stored, kept by the Store's own writes

	dedupWindow time.Duration
	now         func() time.Time

	// shared, on a cluster, is the log that account and session writes go
	// through (command.go): set by NewReplicatedWriter, before the store
	// serves anyone. Nil on a single node.
	shared commandLog
}

// Open opens (creating if needed) the database at path, checks it is in WAL
// mode, applies pending migrations and starts the checkpointer, which Close
// stops.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Durability == "" {
		opts.Durability = Full
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(2, runtime.NumCPU())
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = DefaultDedupWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckpointAfter <= 0 {
		opts.CheckpointAfter = DefaultCheckpointAfter
	}
	if opts.CheckpointIdle <= 0 {
		opts.CheckpointIdle = DefaultCheckpointIdle
	}

	// The checkpointer's own connection, with the writer's synchronous
	// setting so a checkpoint fsyncs what it copies. busy_timeout 0: a
	// TRUNCATE waiting for a reader would hold the write lock meanwhile;
	// it gives up instead and tries again later.
	ckconn, err := sql.Open("sqlite", dsn(path, []string{
		"busy_timeout(0)",
		"synchronous(" + string(opts.Durability) + ")",
	}, ""))
	if err != nil {
		return nil, fmt.Errorf("open %s for checkpoints: %w", path, err)
	}
	ckconn.SetMaxOpenConns(1)
	ckconn.SetMaxIdleConns(1)
	ckconn.SetConnMaxLifetime(0)
	ckconn.SetConnMaxIdleTime(0)
	ckpt := newCheckpointer(ckconn, path, opts.CheckpointAfter, opts.CheckpointIdle)

	// The write connection comes from a driver of the Store's own, whose
	// connection hook has every commit signal the checkpointer.
	drv := &sqlite.Driver{}
	drv.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
		h, ok := c.(interface{ RegisterCommitHook(sqlite.CommitHookFn) })
		if !ok {
			return errNoCommitHook
		}
		h.RegisterCommitHook(func() int32 {
			ckpt.committed()
			return 0 // let the commit go on
		})
		return nil
	})

	// Pragmas go in the DSN so that every pooled connection gets them; a
	// one-off db.Exec("PRAGMA ...") would reach a single connection only.
	// _txlock=immediate makes write transactions take the write lock at BEGIN,
	// so they wait on busy_timeout instead of failing mid-transaction.
	write := sql.OpenDB(connector{drv, dsn(path, []string{
		"busy_timeout(5000)",
		"journal_mode(wal)",
		"foreign_keys(1)",
		"synchronous(" + string(opts.Durability) + ")",
		// No checkpoint inside the writer's COMMIT while the checkpointer
		// keeps up (checkpoint.go); past twice its threshold, the writer's
		// own, as SQLite's default, bounds the WAL as before.
		"wal_autocheckpoint(" + strconv.FormatInt(backstopPages(opts.CheckpointAfter), 10) + ")",
		// A WAL grown past 8 MiB (a long backup holds checkpoints off) is
		// cut back when the writer next starts it over.
		"journal_size_limit(8388608)",
	}, "_txlock=immediate")})
	// One writer: SQLite serialises writes anyway, and a single connection
	// makes that explicit instead of a busy-wait between pooled connections.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	s := &Store{path: path, write: write, ckpt: ckpt, dedupWindow: opts.DedupWindow, now: opts.Now}
	fail := func(err error) (*Store, error) {
		s.closeStmts()
		ckconn.Close()
		write.Close()
		return nil, err
	}
	if err := s.checkWAL(ctx); err != nil {
		return fail(err)
	}
	if err := s.migrate(ctx); err != nil {
		return fail(err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := s.backfillSearch(ctx, opts.Log); err != nil {
		return fail(fmt.Errorf("open %s: %w", path, err))
	}

	if err := s.prepare(ctx); err != nil {
		return fail(fmt.Errorf("open %s: prepare: %w", path, err))
	}

	// The read pool opens only after the writer made the file and its WAL.
	read, err := sql.Open("sqlite", dsn(path, []string{
		"busy_timeout(5000)",
		"query_only(1)",
	}, ""))
	if err != nil {
		return fail(fmt.Errorf("open %s for reading: %w", path, err))
	}
	read.SetMaxOpenConns(opts.ReadConns)
	read.SetMaxIdleConns(opts.ReadConns)
	read.SetConnMaxIdleTime(0)
	s.read = read
	go ckpt.run()
	return s, nil
}

// connector opens the write connection through the Store's own driver.
type connector struct {
	drv *sqlite.Driver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

func dsn(path string, pragmas []string, extra string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	s := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	if extra != "" {
		s += "&" + extra
	}
	return s
}

func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open %s: journal_mode is %q, want wal", s.path, mode)
	}
	return nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes both pools. Close the Writer first so pending messages commit.
func (s *Store) Close() error {
	var errs []error
	errs = append(errs, s.ckpt.close())
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.closeStmts())
	// Closing the last connection checkpoints the WAL into the main file
	// (whatever wal_autocheckpoint says) and removes it, on the writer's
	// connection at synchronous=FULL: the final checkpoint, as before.
	errs = append(errs, s.write.Close())
	// Last, with no connection left whose locks its closing could drop.
	open := s.write.Stats().OpenConnections + s.ckpt.conn.Stats().OpenConnections
	if s.read != nil {
		open += s.read.Stats().OpenConnections
	}
	errs = append(errs, s.ckpt.closeIndex(open))
	return errors.Join(errs...)
}

// Ping checks that the database answers a query.
//
// On a cluster's node that waits for an upgrade (ErrLaterVersion), it is
// that error: the node serves what it has, and falls behind until it is
// upgraded.
func (s *Store) Ping(ctx context.Context) error {
	if s.shared != nil {
		if err := s.shared.health(); err != nil {
			return err
		}
	}
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// SchemaVersion returns the applied migration count (PRAGMA user_version).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// LatestSchemaVersion is the schema version this build migrates to.
func LatestSchemaVersion() int {
	names, _ := migrationNames()
	return len(names)
}

func migrationNames() ([]string, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// migrate applies, in order, each embedded migration newer than the file's
// user_version, each in its own transaction together with the version bump,
// so a crash leaves the schema at a whole version.
func (s *Store) migrate(ctx context.Context) error {
	names, err := migrationNames()
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if have > len(names) {
		return fmt.Errorf("database schema version %d is newer than this NoChat knows (%d): upgrade NoChat", have, len(names))
	}
	for i := have; i < len(names); i++ {
		body, err := fs.ReadFile(migrations, names[i])
		if err != nil {
			return fmt.Errorf("read %s: %w", names[i], err)
		}
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
	}
	return nil
}
