package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory a burst leaves behind. The Go runtime keeps the heap it has freed
// for the allocations to come, up to the next collection's goal, and gives
// back to the OS only what lies beyond that goal (or beyond the memory
// limit). After a reconnect storm, every client of a restarted NoChat at
// once, that is a lot: each handshake allocates about 20 KiB (net/http's
// 4 KiB read and write buffers, which a connection taken out of the server
// never returns to its pools, the request, the upgrade), and with thousands
// of idle connections the goal is high, as Go counts their goroutine stacks
// in it. Measured at 5,000 idle connections, 2 to 3 KiB a connection of
// freed heap stayed resident for as long as the server stayed quiet: on a
// Pi, memory the page cache of the database file could have had.
//
// So a quiet heap with much memory free gives it back: when the heap
// allocated less since the last look than a tenth of what it holds free,
// and that is both a few MiB and a quarter of its live heap (what a
// collection has to mark), NoChat collects and returns the free memory to
// the OS (debug.FreeOSMemory), at most once a minute. A busy heap reuses
// what it holds and is left alone; so is a heap with little to give, for
// which a collection would cost more than it returns. Measured at 5,000
// idle connections, the collection took about 40 ms and returned 12 MiB
// (BENCHMARKS.md).

// giveBack is when memory is given back.
type giveBack struct {
	every time.Duration // how often the heap is looked at
	min   uint64        // free memory below which none is given back
	gap   time.Duration // the least time between two give-backs
}

// defaultGiveBack is NoChat's: a look every 10 s, 4 MiB free at least (the
// runtime's smallest heap goal), one give-back a minute at most.
var defaultGiveBack = giveBack{every: 10 * time.Second, min: 4 << 20, gap: time.Minute}

// heapLook is what the runtime says of the heap at one moment.
type heapLook struct {
	allocated uint64 // bytes allocated since the process started
	free      uint64 // free memory the heap holds and could give back
	live      uint64 // the live heap as of the last collection
	released  uint64 // memory the heap has given back and not taken again
}

var heapMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/released:bytes",
}

// lookAtHeap reads the heap's metrics. The heap's objects beyond what the
// last collection found alive count as free: most are a burst's garbage,
// which collecting frees.
func lookAtHeap() heapLook {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not known to this runtime
		}
		return s[i].Value.Uint64()
	}
	objects, live := v(2), v(3)
	return heapLook{
		allocated: v(0),
		free:      v(1) + objects - min(objects, live),
		live:      live,
		released:  v(4),
	}
}

// due reports whether memory should be given back now, the heap looking
// like now after looking like before an interval ago.
func (g giveBack) due(before, now heapLook) bool {
	return now.free >= max(g.min, now.live/4) && now.allocated-before.allocated < now.free/10
}

// run looks at the heap every g.every until ctx ends, and gives back its
// free memory when due.
func (g giveBack) run(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	before := lookAtHeap()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := lookAtHeap()
		if g.due(before, now) && time.Since(last) >= g.gap {
			start := time.Now()
			debug.FreeOSMemory()
			last = time.Now()
			after := lookAtHeap()
			log.Debug("gave memory back to the OS", "free_before", sizeText(int64(now.free)),
				"returned", sizeText(int64(after.released)-int64(now.released)), "took", last.Sub(start).Round(time.Millisecond))
			now = after
		}
		before = now
	}
}
