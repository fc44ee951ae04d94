package db_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"slices"
	"testing"
	"time"

	"nochat/db"
)

// BenchmarkCommitCheckpoint is one sender waiting for each message's commit
// (as a client waits for its ack), with the WAL checkpoint on the writer's
// path (what SQLite's automatic checkpoint did: a PASSIVE checkpoint after
// the commit that takes the WAL past 1,000 pages, before the next batch) and
// off it (the checkpointer). It reports the sender's latency per message:
// the tail is where a checkpoint on the path shows.
//
//	go test ./db -run '^$' -bench CommitCheckpoint -benchtime 5000x
func BenchmarkCommitCheckpoint(b *testing.B) {
	b.Run("on-path", func(b *testing.B) { benchCheckpoint(b, true) })
	b.Run("off-path", func(b *testing.B) { benchCheckpoint(b, false) })
}

func benchCheckpoint(b *testing.B, onPath bool) {
	var opts db.Options
	if onPath {
		opts.CheckpointAfter = 1 << 40 // the store's checkpointer stays out of it
	}
	s := benchStoreWith(b, opts)
	var ck *sql.DB
	if onPath {
		var err error
		if ck, err = sql.Open("sqlite", "file:"+s.Path()+"?_pragma=synchronous(full)"); err != nil {
			b.Fatal(err)
		}
		defer ck.Close()
	}
	var ckpts, commits []time.Duration // on the writer's goroutine only
	w := db.NewWriter(s, 0, func(c db.Commit[chan error]) {
		commits = append(commits, c.InCommit)
		if onPath {
			if walPages(b, s.Path()) >= 1000 { // wal_autocheckpoint's default
				began := time.Now()
				if _, err := ck.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
					b.Error(err)
				}
				ckpts = append(ckpts, time.Since(began))
			}
		}
		for _, it := range c.Items {
			it.Tag <- c.Err
		}
	})
	defer w.Close()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	done := make(chan error, 1)
	b.ResetTimer()
	for i := range int64(b.N) {
		began := time.Now()
		if err := w.Append(ctx, draft(i, false), done); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(began))
	}
	b.StopTimer()
	w.Close() // the writer's goroutine is done with ckpts and commits
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	slices.Sort(commits)
	b.ReportMetric(ms(commits[len(commits)*99/100]), "p99-in-commit-ms")
	if onPath && len(ckpts) > 0 {
		slices.Sort(ckpts)
		b.ReportMetric(float64(len(ckpts)), "ckpts-on-path")
		b.ReportMetric(ms(ckpts[len(ckpts)/2]), "p50-ckpt-ms")
		b.ReportMetric(ms(ckpts[len(ckpts)-1]), "max-ckpt-ms")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if !onPath {
		st := s.CheckpointStats()
		b.ReportMetric(float64(st.Runs[db.Passive]), "passive")
		b.ReportMetric(float64(st.Runs[db.Restart]), "restart")
		b.ReportMetric(ms(st.Longest), "longest-ckpt-ms")
	}
}

// walPages is how many frames the WAL holds, from its index's header
// (mxFrame, at offset 16: sqlite.org/walformat.html).
func walPages(b *testing.B, path string) uint32 {
	buf := make([]byte, 20)
	f, err := os.Open(path + "-shm")
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, 0); err != nil {
		b.Fatal(err)
	}
	return binary.NativeEndian.Uint32(buf[16:])
}
