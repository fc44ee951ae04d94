package db

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Checkpoints are SQLite's copy of the WAL back into the database file. Left
// automatic, SQLite runs one inside the COMMIT of whichever connection
// crosses wal_autocheckpoint (1,000 pages): the writer's, since it is the
// only one that writes, so every ~4 MiB of messages one commit also copied
// the WAL into the file and fsynced it, and every message of that batch
// (and every batch queued behind it) reached its readers that much later.
// The writer's connection checkpoints only past twice that
// (backstopPages), and a checkpointer goroutine, on a connection of its
// own, does the work before:
//
//   - PASSIVE when the writer signals that the WAL has grown past
//     CheckpointAfter. PASSIVE takes no lock the writer needs and never
//     waits, so commits go on while it copies; it copies what no reader
//     still needs, and the writer starts the WAL over from its beginning
//     once everything was copied.
//   - RESTART right after a PASSIVE that copied all it saw, when the WAL
//     is still 16 times CheckpointAfter (64 MiB) long: a writer committing
//     back to back begins its next transaction before each PASSIVE has
//     caught up, and it starts the WAL over only when everything was
//     copied, so without a pause the WAL would grow without bound (in
//     BenchmarkCommitCheckpoint one sender's 3,000 back-to-back messages
//     took it past 64 MiB). RESTART takes the write lock, copies the few
//     frames the PASSIVE left and starts the WAL over; with busy timeout 0
//     it never waits for the writer or a reader (it does what a PASSIVE
//     would instead). But a commit that comes meanwhile waits for it, in
//     SQLite's busy handler, whose sleeps (1, 2, 5, 10 ms...) made that
//     up to 37 ms in the benchmark, against 11-14 ms without RESTART: so
//     it is the bound on disk use under sustained load only, not the way
//     a chat's WAL starts over. Litestream does the same (PASSIVE at 1,000
//     pages, RESTART past a larger bound).
//   - TRUNCATE when no commit came for CheckpointIdle and the WAL file is
//     at least a quarter of CheckpointAfter (1 MiB), so an idle chat's WAL
//     file shrinks to nothing (the writer starts the WAL over but leaves
//     the file as long as it grew; a reader that held a snapshot through
//     the busy period may have kept even that from happening). TRUNCATE briefly takes
//     the write lock, which an idle chat does not miss; it does not wait for
//     readers (busy_timeout 0), it tries again later.
//
// Durability is unchanged: a commit is durable when its WAL frames are
// fsynced (synchronous=FULL), which the writer still does in its COMMIT; a
// checkpoint only moves committed pages, and fsyncs them on its own
// connection (same synchronous setting).

// backstopPages is the writer's wal_autocheckpoint: twice the
// checkpointer's threshold, in 4 KiB pages. The checkpointer keeps a
// chat's WAL under it, so the writer's COMMIT never checkpoints; under
// back-to-back commits, when the checkpointer's PASSIVE cannot catch the
// writer between transactions, the WAL would grow until a RESTART (64
// MiB) and, on a small disk, fill it before the messages reach the
// database file (TestDiskFillingUpMidStreamAnswersEverySend found it). Then
// the writer checkpoints in its COMMIT, as SQLite does by default, and the
// WAL stays within about 8 MiB.
func backstopPages(after int64) int64 { return max(2*after/4096, 1) }

// Defaults for Options.CheckpointAfter and Options.CheckpointIdle.
const (
	// DefaultCheckpointAfter is SQLite's own automatic threshold: 1,000
	// pages of 4 KiB.
	DefaultCheckpointAfter = 1000 * 4096
	// DefaultCheckpointIdle is how long without a commit before the WAL is
	// truncated: long enough that a chat's pauses between messages do not
	// each cost a truncate, short enough that the file is small soon after.
	DefaultCheckpointIdle = 2 * time.Second
	// maxIdleRetry bounds the back-off of an idle truncate a reader keeps
	// from completing.
	maxIdleRetry = time.Minute
	// restartAfter, times CheckpointAfter, is the WAL length (64 MiB by
	// default) past which a RESTART bounds it (see above).
	restartAfter = 16
)

// Checkpoint modes, as CheckpointStats counts them.
const (
	Passive  = "passive"
	Restart  = "restart"
	Truncate = "truncate"
)

// CheckpointStats is what the checkpointer has done since Open, for metrics.
type CheckpointStats struct {
	Runs     map[string]int64 // checkpoints run, by mode (Passive, Restart, Truncate)
	Partial  int64            // checkpoints that could not copy all of the WAL (a reader needed it)
	Failed   int64            // checkpoints that returned an error
	Seconds  float64          // time spent checkpointing, in total
	Longest  time.Duration    // the longest checkpoint
	LastErr  string           // the latest error, "" if none
	WALBytes int64            // the WAL file's size when last looked at
}

// checkpointer runs the WAL checkpoints off the writer's commit (see above).
type checkpointer struct {
	conn  *sql.DB  // its own connection, never the writer's
	wal   string   // the WAL file's path
	shm   string   // the WAL index's path
	index *os.File // the WAL index, open from the first look until the Store closes (see walFrames)
	after int64    // WAL bytes past which a passive checkpoint runs
	idle  time.Duration

	kick     chan struct{} // the writer committed (never blocks: capacity 1)
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu    sync.Mutex
	stats CheckpointStats
}

func newCheckpointer(conn *sql.DB, path string, after int64, idle time.Duration) *checkpointer {
	return &checkpointer{
		conn:  conn,
		wal:   path + "-wal",
		shm:   path + "-shm",
		after: after,
		idle:  idle,
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		stats: CheckpointStats{Runs: map[string]int64{}},
	}
}

// committed is the writer's signal, from its connection's commit hook: one
// non-blocking send, so the commit path pays nothing more.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	idle := time.NewTimer(c.idle)
	idle.Stop()
	dirty := false // commits since the last complete truncate
	retry := c.idle
	for {
		select {
		case <-c.stop:
			idle.Stop()
			return
		case <-c.kick:
			dirty, retry = true, c.idle
			idle.Reset(c.idle)
			// The hook runs as the commit begins, so the figures may lag
			// by a commit; the next signal sees it.
			frames, pending := c.walFrames()
			if pending >= c.after && c.checkpoint(Passive) && frames >= restartAfter*c.after {
				// Caught up, but the writer has not started the WAL
				// over: little is left to copy, so try to restart it.
				c.checkpoint(Restart)
			}
		case <-idle.C:
			// A small WAL waits for more: a quiet chat's every message
			// would otherwise cost a checkpoint (twice the writes to an
			// SD card), where SQLite's own waited for 1,000 pages.
			if !dirty || c.walSize() < c.after/4 {
				dirty = false
				continue
			}
			if c.checkpoint(Truncate) {
				dirty = false
				continue
			}
			// A reader kept the WAL: try again later, less often.
			retry = min(2*retry, maxIdleRetry)
			idle.Reset(retry)
		}
	}
}

// close stops the goroutine and closes the connection; again, it does
// nothing (Store.Close may be called twice).
func (c *checkpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.conn.Close()
}

// closeIndex closes the WAL index walFrames opened, once no connection of
// the Store's is open (open says how many are), so that no lock of theirs
// is dropped. sql.DB.Close leaves a connection in use open until it is
// put back; then the descriptor stays open until the process ends.
func (c *checkpointer) closeIndex(open int) error {
	if c.index == nil || open > 0 {
		return nil
	}
	err := c.index.Close()
	c.index = nil
	return err
}

// walFrames reads, from the WAL index, how many bytes of frames the WAL
// holds and how many of them no checkpoint has copied yet. The file's size
// says neither: the writer starts the WAL over from its beginning and
// leaves the file as long as it was. The layout is SQLite's documented
// file format (sqlite.org/walformat.html): the header's mxFrame at offset
// 16, page size at 14, the checkpoint's nBackfill at 96, in the machine's
// byte order. An index it cannot read counts as empty.
//
// The file is opened once and stays open until the Store's connections
// have closed (closeIndex). SQLite coordinates processes with POSIX
// advisory locks on this file, and closing any descriptor of a file drops
// all of the process's locks on it, SQLite's own included: when each look
// opened and closed the file, another process opening the database (the
// sqlite3 shell, `nochat cluster status`, a backup) found it unlocked,
// took itself for the only user and truncated the index under this
// process's memory map. Commits then failed with "disk I/O error (8714)"
// (SQLITE_IOERR_IN_PAGE), and a node applying a replicated log lost
// entries it had applied.
//
// Should SQLite ever remove the file and make another (only when every
// connection of the process has closed), the old descriptor is of a file
// nobody uses any more: it is closed, which drops no lock on the new one,
// and the new one opened.
func (c *checkpointer) walFrames() (frames, pending int64) {
	if c.index != nil {
		now, err1 := os.Stat(c.shm)
		held, err2 := c.index.Stat()
		if err1 != nil || err2 != nil || !os.SameFile(now, held) {
			c.index.Close()
			c.index = nil
		}
	}
	if c.index == nil {
		f, err := os.Open(c.shm)
		if err != nil {
			return 0, 0
		}
		c.index = f
	}
	var b [100]byte
	if _, err := c.index.ReadAt(b[:], 0); err != nil {
		return 0, 0
	}
	size := int64(binary.NativeEndian.Uint16(b[14:]))
	if size == 1 {
		size = 65536 // how the header stores the largest page size
	}
	mx := int64(binary.NativeEndian.Uint32(b[16:]))
	backfilled := int64(binary.NativeEndian.Uint32(b[96:]))
	frame := size + 24 // a frame is its page and a 24-byte header
	c.walSize()
	return mx * frame, max(0, mx-backfilled) * frame
}

func (c *checkpointer) walSize() int64 {
	fi, err := os.Stat(c.wal)
	if err != nil {
		return 0
	}
	c.mu.Lock()
	c.stats.WALBytes = fi.Size()
	c.mu.Unlock()
	return fi.Size()
}

// checkpoint runs one checkpoint and reports whether it copied the whole
// WAL (and, for Truncate, emptied the file). Its errors are counted and
// kept for metrics, never returned to a sender: a checkpoint that did not
// happen costs WAL space, not a message.
func (c *checkpointer) checkpoint(mode string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	var busy, log, copied int64
	err := c.conn.QueryRowContext(ctx, fmt.Sprintf("PRAGMA wal_checkpoint(%s)", mode)).Scan(&busy, &log, &copied)
	took := time.Since(began)
	complete := err == nil && busy == 0 && log == copied
	c.mu.Lock()
	c.stats.Runs[mode]++
	c.stats.Seconds += took.Seconds()
	c.stats.Longest = max(c.stats.Longest, took)
	switch {
	case err != nil:
		c.stats.Failed++
		c.stats.LastErr = err.Error()
	case !complete:
		c.stats.Partial++
	}
	c.mu.Unlock()
	c.walSize()
	return complete
}

func (c *checkpointer) snapshot() CheckpointStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Runs = make(map[string]int64, len(c.stats.Runs))
	for k, v := range c.stats.Runs {
		s.Runs[k] = v
	}
	return s
}

// CheckpointStats reports the checkpoints run since Open.
func (s *Store) CheckpointStats() CheckpointStats {
	return s.ckpt.snapshot()
}

// errNoCommitHook: the driver's connection cannot tell the checkpointer of
// commits, which would leave the WAL to grow until Close.
var errNoCommitHook = errors.New("sqlite connection has no commit hook")
