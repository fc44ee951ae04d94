package db_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nochat/db"
)

// The storage benchmarks of the performance issue: the Writer at
// synchronous=FULL (the default) with 1, 64 and 800 senders (800: a burst
// of nochat bench, 50 clients with 16 messages in flight), each sender
// waiting for its message's commit before sending the next, as a chat
// client waits for its ack; and, for the ratio, one transaction per message.
//
//	go test ./db -run '^$' -bench 'Writer|OneTxPerMessage' -benchtime 3s
//
// The database goes under the system's temporary directory, or under
// NOCHAT_BENCH_DIR when set: put it on the disk NoChat will use (a Pi's SD
// card) for figures that mean something there, since fsync is the cost.

// benchStore opens an empty database for a benchmark.
func benchStore(b *testing.B) *db.Store {
	b.Helper()
	return benchStoreWith(b, db.Options{})
}

// benchStoreWith is benchStore with options.
func benchStoreWith(b *testing.B, o db.Options) *db.Store {
	b.Helper()
	dir := b.TempDir()
	if parent := os.Getenv("NOCHAT_BENCH_DIR"); parent != "" {
		var err error
		if dir, err = os.MkdirTemp(parent, "nochat-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	s, err := db.Open(context.Background(), filepath.Join(dir, "nochat.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchText is a chat line of a typical length.
const benchText = "on my way, the bus is late again — save me a seat near the window"

// draft is message i of a benchmark. With cid it is what a browser sends
// (nochat.v1, with a client id the writer looks up to de-duplicate);
// without, what an echo-protocol or REST client sends.
func draft(i int64, cid bool) db.Draft {
	d := db.Draft{User: "ann", Message: benchText}
	if cid {
		d.CID = "bench-" + strconv.FormatInt(i, 10)
	}
	return d
}

func BenchmarkWriter(b *testing.B) {
	for _, proto := range []struct {
		name string
		cid  bool
	}{{"cid", true}, {"nocid", false}} {
		for _, senders := range []int{1, 64, 800} {
			b.Run(fmt.Sprintf("senders=%d/%s", senders, proto.name), func(b *testing.B) {
				benchWriter(b, senders, proto.cid)
			})
		}
	}
}

func benchWriter(b *testing.B, senders int, cid bool) {
	s := benchStore(b)
	var commits atomic.Int64
	w := db.NewWriter(s, 0, func(c db.Commit[chan error]) {
		commits.Add(1)
		for _, it := range c.Items {
			it.Tag <- c.Err
		}
	})
	defer w.Close()

	var next atomic.Int64
	b.ResetTimer()
	sendFrom(b, w, senders, func() (db.Draft, bool) {
		i := next.Add(1)
		return draft(i, cid), i <= int64(b.N)
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(max(1, commits.Load())), "msgs/commit")
}

// sendFrom appends drafts to w from senders goroutines at once until next
// says there are no more, each sender waiting for its draft's commit before
// it sends the next, as a chat client waits for its ack. next is called
// from every sender.
func sendFrom(b *testing.B, w *db.Writer[chan error], senders int, next func() (db.Draft, bool)) {
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			done := make(chan error, 1)
			for {
				d, ok := next()
				if !ok {
					return
				}
				if err := w.Append(context.Background(), d, done); err != nil {
					b.Error(err)
					return
				}
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkOneTxPerMessage is the baseline the Writer's group commit is
// measured against: every message its own transaction and its own fsync.
func BenchmarkOneTxPerMessage(b *testing.B) {
	for _, proto := range []struct {
		name string
		cid  bool
	}{{"cid", true}, {"nocid", false}} {
		b.Run(proto.name, func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := range int64(b.N) {
				if _, err := s.Insert(ctx, []db.Draft{draft(i, proto.cid)}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDeleteInBatches is a ban's deletion of a person's messages:
// Delete drafts in the writer's batches (256 a transaction), each an event
// of the log. ns/op is one message's deletion.
func BenchmarkDeleteInBatches(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const batch = db.DefaultMaxBatch
	ids := personsMessages(b, s, 0)
	b.ResetTimer()
	for chunk := range slices.Chunk(ids, batch) {
		drafts := make([]db.Draft, len(chunk))
		for i, id := range chunk {
			drafts[i] = db.Draft{Change: db.Delete, Target: id, Moderator: true}
		}
		stored, err := s.Insert(ctx, drafts)
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range stored {
			if st.Change == nil {
				b.Fatalf("a deletion was refused: %v", st.Refused)
			}
		}
	}
}

// BenchmarkDeleteInOneCommand is what BenchmarkDeleteInBatches replaced:
// a ban's deletion of all of a person's messages in one command, which
// no page that was away heard of. ns/op is one message's deletion.
func BenchmarkDeleteInOneCommand(b *testing.B) {
	s := benchStore(b)
	a, err := s.CreateAccount(context.Background(), db.Account{Name: "ann", NameKey: "ann", PasswordHash: "h", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	personsMessages(b, s, a.ID)
	b.ResetTimer()
	deleted, err := s.DeleteMessagesOfInOneCommand(context.Background(), a.ID)
	if err != nil || len(deleted[db.DefaultRoom]) != b.N {
		b.Fatalf("deleted %d of %d (%v)", len(deleted[db.DefaultRoom]), b.N, err)
	}
}

// personsMessages stores b.N messages of account (0: a guest's) in the
// writer's batches and returns their ids.
func personsMessages(b *testing.B, s *db.Store, account int64) []int64 {
	b.Helper()
	var ids []int64
	for len(ids) < b.N {
		drafts := make([]db.Draft, min(db.DefaultMaxBatch, b.N-len(ids)))
		for i := range drafts {
			drafts[i] = draft(int64(len(ids)+i), false)
			drafts[i].UserID = account
		}
		stored, err := s.Insert(context.Background(), drafts)
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range stored {
			ids = append(ids, st.Message.ID)
		}
	}
	return ids
}
