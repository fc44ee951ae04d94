package main

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestGiveBackIsDueWhenQuietAndWorthIt(t *testing.T) {
	g := giveBack{min: 4 << 20}
	const mib = 1 << 20
	tests := []struct {
		name                  string
		allocated, free, live uint64 // allocated: since the last look
		want                  bool
	}{
		{"after a reconnect storm, quiet", 30 * 1024, 19 * mib, 30 * mib, true},
		{"quiet, a small heap with a few MiB free", 100 * 1024, 5 * mib, 6 * mib, true},
		{"busy: allocating what it holds free", 3 * mib, 19 * mib, 30 * mib, false},
		{"allocating a tenth of it", 2 * mib, 19 * mib, 30 * mib, false},
		{"little free", 0, 3 * mib, 6 * mib, false},
		{"free less than a quarter of the live heap", 0, 20 * mib, 100 * mib, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := heapLook{allocated: 1 << 30}
			now := heapLook{allocated: before.allocated + tt.allocated, free: tt.free, live: tt.live}
			if got := g.due(before, now); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}

// Garbage left after the last collection stays resident until the next,
// which a quiet heap far below its goal does not start for minutes (the
// runtime's forced one comes every two); the give-back returns it within a
// look or two. The test holds a live heap large enough that the goal is far
// above its garbage, as thousands of connections' heap and stacks make it
// for NoChat. Not parallel: the heap is the process's.
func TestGiveBackReturnsWhatAQuietHeapHoldsFree(t *testing.T) {
	const mib = 1 << 20
	live := make([][]byte, 96)
	for i := range live {
		live[i] = make([]byte, mib)
	}
	runtime.GC() // the next goal: about twice the live heap
	litter := func() {
		garbage := make([][]byte, 64)
		for i := range garbage {
			garbage[i] = make([]byte, mib)
		}
	}
	litter()
	start := lookAtHeap()
	if start.free < 48*mib {
		t.Fatalf("the test's garbage left %d MiB free, want 48 MiB or more", start.free/mib)
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		giveBack{every: 20 * time.Millisecond, min: 4 * mib, gap: time.Hour}.run(ctx, log)
	}()

	// What the heap has given back since start (it may take released
	// memory again, so this can be negative).
	returned := func() int64 { return int64(lookAtHeap().released) - int64(start.released) }
	deadline := time.Now().Add(10 * time.Second)
	for returned() < 48*mib {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("in 10 s %d MiB of %d MiB free was given back, want 48 MiB or more; log:\n%s",
				returned()/mib, start.free/mib, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Once a gap at most: what is freed next stays until the gap is over.
	litter()
	time.Sleep(200 * time.Millisecond) // ten looks
	cancel()
	<-done
	if n := strings.Count(logs.String(), "gave memory back to the OS"); n != 1 {
		t.Errorf("gave memory back %d times in the gap of an hour, want once; log:\n%s", n, logs.String())
	}
	runtime.KeepAlive(live)
}
