package main

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

const oneMiB = 1 << 20

func TestGiveBackIsDueWhenQuietAndWorthIt(t *testing.T) {
	g := giveBack{atLeast: 4 * oneMiB}
	tests := []struct {
		name                  string
		allocated, free, live uint64 // allocated: since the last look
		want                  bool
	}{
		{"after a reconnect storm, quiet", 30 * 1024, 19 * oneMiB, 30 * oneMiB, true},
		{"quiet, a small heap with a few MiB free", 100 * 1024, 5 * oneMiB, 6 * oneMiB, true},
		{"busy: allocating what it holds free", 3 * oneMiB, 19 * oneMiB, 30 * oneMiB, false},
		{"allocating a tenth of it", 2 * oneMiB, 19 * oneMiB, 30 * oneMiB, false},
		{"little free", 0, 3 * oneMiB, 6 * oneMiB, false},
		{"free less than a quarter of the live heap", 0, 20 * oneMiB, 100 * oneMiB, false},
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

// quietHeap sets the process's heap up as thousands of idle connections
// make NoChat's: a live heap large enough that the next collection's goal
// lies far above the garbage the test makes, so that neither a collection
// nor the runtime's scavenger comes for it meanwhile. GOGC and the memory
// limit are pinned (the environment's, or a limit an earlier test's server
// set, would collect the garbage while it is made). When the test ends the
// heap is let go and collected and the settings put back, so that the
// tests after it do not run under its goal (collections, and the
// finalizers that close what a test left open, would come far apart). The
// heap is the process's: the tests that use this are not parallel.
func quietHeap(t *testing.T) {
	gogc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	live := make([][]byte, 96)
	for i := range live {
		live[i] = make([]byte, oneMiB)
	}
	t.Cleanup(func() {
		runtime.KeepAlive(live)
		live = nil
		debug.FreeOSMemory()
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
	debug.FreeOSMemory() // nothing free: the next goal about twice the live heap
}

// litter leaves 64 MiB of garbage.
func litter() {
	garbage := make([][]byte, 64)
	for i := range garbage {
		garbage[i] = make([]byte, oneMiB)
	}
}

// giveBackFor runs g on its own until the test ends, logging to the
// returned buffer, which may be read once stop has returned.
func giveBackFor(t *testing.T, g giveBack) (logs *bytes.Buffer, stop func()) {
	logs = new(bytes.Buffer)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.run(ctx, log)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return logs, stop
}

// releasedSince is what the heap has given back since start; it may take
// released memory again, so this can be negative.
func releasedSince(start heapLook) int64 {
	now, _ := lookAtHeap()
	return int64(now.released) - int64(start.released)
}

// waitReleased waits up to 10 s for the heap to give back n bytes since
// start, and reports whether it did.
func waitReleased(start heapLook, n int64) bool {
	for deadline := time.Now().Add(10 * time.Second); releasedSince(start) < n; {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Garbage left after the last collection stays resident until the next,
// which a quiet heap far below its goal does not start for minutes (the
// runtime's forced one comes every two); the give-back returns it within a
// look or two, and once a gap at most.
func TestGiveBackReturnsWhatAQuietHeapHoldsFree(t *testing.T) {
	quietHeap(t)
	litter()
	start, ok := lookAtHeap()
	if !ok || start.free < 48*oneMiB {
		t.Fatalf("the test's garbage left %d MiB free, want 48 MiB or more", start.free/oneMiB)
	}
	logs, stop := giveBackFor(t, giveBack{every: 20 * time.Millisecond, atLeast: 4 * oneMiB, gap: time.Hour})
	if !waitReleased(start, 48*oneMiB) {
		stop()
		t.Fatalf("in 10 s %d MiB of %d MiB free was given back, want 48 MiB or more; log:\n%s",
			releasedSince(start)/oneMiB, start.free/oneMiB, logs)
	}

	// What is freed next stays until the gap is over.
	given := releasedSince(start)
	litter()
	time.Sleep(200 * time.Millisecond) // ten looks
	stop()
	if n := strings.Count(logs.String(), "gave memory back to the OS"); n != 1 {
		t.Errorf("gave memory back %d times in the gap of an hour, want once; log:\n%s", n, logs)
	}
	if more := releasedSince(start) - given; more >= 32*oneMiB {
		t.Errorf("%d MiB more given back within the gap, want the second garbage kept", more/oneMiB)
	}
}

// A quiet heap with nothing free is left alone, however often it is looked
// at; pages a collection freed (the runtime's forced one, every two
// minutes) are given back as the garbage is.
func TestGiveBackLeavesAHeapWithNothingFree(t *testing.T) {
	quietHeap(t)
	logs, stop := giveBackFor(t, giveBack{every: 20 * time.Millisecond, atLeast: 4 * oneMiB, gap: 0})
	time.Sleep(200 * time.Millisecond) // ten looks
	if n := strings.Count(logs.String(), "gave memory back to the OS"); n != 0 {
		stop()
		t.Fatalf("gave memory back %d times with nothing free; log:\n%s", n, logs)
	}

	litter()
	runtime.GC() // free pages now, not dead objects
	start, _ := lookAtHeap()
	ok := waitReleased(start, 48*oneMiB)
	stop()
	if !ok {
		t.Errorf("%d MiB of 64 MiB a collection freed given back in 10 s, want 48 MiB or more; log:\n%s", releasedSince(start)/oneMiB, logs)
	}
}

// The server gives memory back as it runs: its log says so once its heap
// holds garbage and is quiet.
func TestAQuietServerGivesMemoryBack(t *testing.T) {
	s := startConfig(t, nil, func(c *config) {
		c.logLevel = slog.LevelDebug
		c.memoryLimit = memoryLimit{bytes: math.MaxInt64, source: "off"}
		c.giveBack = giveBack{every: 20 * time.Millisecond, atLeast: 4 * oneMiB, gap: time.Hour}
	})
	quietHeap(t) // after the start, whose garbage would count
	litter()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.logs.String(), "gave memory back to the OS"); {
		if time.Now().After(deadline) {
			t.Fatalf("no memory given back in 10 s; log:\n%s", s.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
