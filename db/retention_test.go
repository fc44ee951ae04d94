package db_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"nochat/db"
)

// insertN stores n messages named prefix0, prefix1, ... in batches.
func insertN(t testing.TB, s *db.Store, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 250 {
		var texts []string
		for j := i; j < min(n, i+250); j++ {
			texts = append(texts, fmt.Sprint(prefix, j))
		}
		insert(t, s, texts...)
	}
}

// afterNow returns a time later than every timestamp stored so far and
// earlier than every one stored from now on (timestamps are milliseconds).
func afterNow() time.Time {
	time.Sleep(2 * time.Millisecond)
	cut := time.Now()
	time.Sleep(2 * time.Millisecond)
	return cut
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		old, young int  // messages stored before and after the age cut
		byAge      bool // prune with the age cut
		keep       int  // keepNewest
		want       int  // messages left
	}{
		{name: "keeps everything by default", old: 30, young: 5, want: 35},
		{name: "keeps the newest n", old: 1200, young: 3, keep: 100, want: 100},
		{name: "removes what is too old", old: 1200, young: 7, byAge: true, want: 7},
		{name: "removes everything too old", old: 20, byAge: true, want: 0},
		{name: "both limits: the newest n, none too old", old: 50, young: 30, byAge: true, keep: 10, want: 10},
		{name: "both limits: what is young, at most n", old: 50, young: 30, byAge: true, keep: 40, want: 30},
		{name: "room smaller than the limit", old: 5, keep: 100, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			insertN(t, s, "old", tt.old)
			cut := afterNow()
			insertN(t, s, "young", tt.young)
			var olderThan time.Time
			if tt.byAge {
				olderThan = cut
			}
			deleted, below, err := s.Prune(ctx, olderThan, tt.keep, 500)
			if err != nil {
				t.Fatal(err)
			}
			total := tt.old + tt.young
			if got, want := deleted, int64(total-tt.want); got != want {
				t.Fatalf("deleted %d, want %d", got, want)
			}
			// Ids have no holes here: every id under the first one kept is gone.
			wantBelow := int64(total - tt.want + 1)
			if deleted == 0 {
				wantBelow = 0
			}
			if below != wantBelow {
				t.Fatalf("below = %d, want %d", below, wantBelow)
			}
			if got, want := s.Pruned(), deleted; got != want {
				t.Fatalf("Pruned() = %d, want %d", got, want)
			}
			left, err := s.Latest(ctx, 500)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(left), min(tt.want, 500); got != want {
				t.Fatalf("%d messages left, want %d", got, want)
			}
			// What is left is the newest, in order, up to the newest stored.
			if len(left) > 0 {
				if got, want := left[len(left)-1].ID, int64(total); got != want {
					t.Fatalf("newest left is %d, want %d", got, want)
				}
				if got, want := left[0].ID, int64(total-len(left)+1); got != want {
					t.Fatalf("oldest left is %d, want %d", got, want)
				}
			}
			// A second pass finds nothing more.
			if again, _, err := s.Prune(ctx, olderThan, tt.keep, 500); err != nil || again != 0 {
				t.Fatalf("second Prune deleted %d (err %v), want 0", again, err)
			}
		})
	}
}

func TestPruneWithNothingToDeleteWritesNothing(t *testing.T) {
	// SD cards wear with every write: the periodic pass must not write when
	// retention has nothing to do.
	ctx := context.Background()
	s := newTestStore(t)
	insertN(t, s, "m", 50)
	stat := func() string {
		out := ""
		for _, suffix := range []string{"", "-wal"} {
			fi, err := os.Stat(s.Path() + suffix)
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("%s: %d bytes, modified %s; ", suffix, fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
		return out
	}
	before := stat()
	for range 3 {
		time.Sleep(5 * time.Millisecond) // a write would show in the mtime
		if n, _, err := s.Prune(ctx, time.Now().Add(-time.Hour), 100, 500); err != nil || n != 0 {
			t.Fatalf("Prune deleted %d (err %v), want 0", n, err)
		}
	}
	if after := stat(); after != before {
		t.Fatalf("Prune with nothing to delete changed the files:\nbefore %s\nafter  %s", before, after)
	}
}

func TestPruneWhileWriting(t *testing.T) {
	// Retention and the writer share the one write connection: every message
	// the writer commits during a long prune is kept, and the prune finishes.
	ctx := context.Background()
	s := newTestStore(t)
	insertN(t, s, "old", 5000)
	cut := afterNow() // everything the writer commits is younger

	var mu sync.Mutex
	var committed []int64
	var slowest time.Duration // from submit to commit, for the log
	w := db.NewWriter(s, 0, func(c db.Commit[time.Time]) {
		if c.Err != nil {
			t.Error(c.Err)
			return
		}
		mu.Lock()
		for _, it := range c.Items {
			committed = append(committed, it.Message.ID)
			slowest = max(slowest, time.Since(it.Tag))
		}
		mu.Unlock()
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.Append(ctx, db.Draft{User: "live", Message: fmt.Sprint("live", i)}, time.Now()); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})

	deleted, _, err := s.Prune(ctx, cut, 0, 500)
	close(stop)
	wg.Wait()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 5000 {
		t.Fatalf("deleted %d, want the 5,000 old messages", deleted)
	}
	for _, id := range committed {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("message %d, committed during the prune: %v", id, err)
		}
	}
	t.Logf("pruned %d messages while %d were written; slowest commit of a write: %v", deleted, len(committed), slowest)
}
