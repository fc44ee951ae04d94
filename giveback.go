package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory a burst leaves behind. The Go runtime keeps the heap it has freed
// for the allocations to come, and returns to the OS on its own only what
// lies well beyond the heap it had in use at its last collection. After a
// reconnect storm (every client of a restarted NoChat at once, each
// handshake some 20 KiB of garbage) that is megabytes a Pi's page cache
// could use, held for as long as the chat stays quiet: measured at 5,000
// idle connections, 2 to 3 KiB each, still there after the runtime's forced
// collection at two minutes (BENCHMARKS.md).
//
// So a quiet heap gives it back: when the heap allocated less since the
// last look than a tenth of what it holds free, and that is both a few MiB
// and a quarter of its live heap (what a collection has to mark), NoChat
// collects and returns the free memory to the OS (debug.FreeOSMemory), at
// most once a gap. "Quiet" is relative: free memory grows with what is
// allocated, so a heap the collector has left alone for about ten looks
// qualifies too, where the runtime would soon force a collection anyway. A
// heap collected often reuses what it holds and is left alone. What the
// heap holds free is an upper bound (objects allocated since the last
// collection count, live or not); a give-back that returns little doubles
// the gap before the next, up to sixteen times.

// giveBack is when memory is given back.
type giveBack struct {
	every   time.Duration // how often the heap is looked at
	atLeast uint64        // free memory below which none is given back
	gap     time.Duration // the least time between two give-backs
}

// defaultGiveBack is NoChat's: a look every 10 s, 4 MiB free at least (the
// runtime's smallest heap goal), one give-back a minute at most.
func defaultGiveBack() giveBack {
	return giveBack{every: 10 * time.Second, atLeast: 4 << 20, gap: time.Minute}
}

// heapLook is what the runtime says of the heap at one moment.
type heapLook struct {
	allocated uint64 // bytes allocated since the process started
	free      uint64 // free memory the heap holds, at most, which a collection would free
	live      uint64 // the live heap as of the last collection
	released  uint64 // memory the heap has given back and not taken again
}

// lookAtHeap reads the heap's metrics. The heap's objects beyond what the
// last collection found alive count as free: after a burst, most are its
// garbage. It reports false when the runtime does not know a metric, or
// when the collector is off (GOGC=off): nothing is given back then.
func lookAtHeap() (heapLook, bool) {
	var h heapLook
	var free, objects, gogc uint64
	read := []struct {
		name string
		to   *uint64
	}{
		{"/gc/heap/allocs:bytes", &h.allocated},
		{"/memory/classes/heap/free:bytes", &free},
		{"/memory/classes/heap/objects:bytes", &objects},
		{"/gc/heap/live:bytes", &h.live},
		{"/memory/classes/heap/released:bytes", &h.released},
		{"/gc/gogc:percent", &gogc},
	}
	s := make([]metrics.Sample, len(read))
	for i, r := range read {
		s[i].Name = r.name
	}
	metrics.Read(s)
	for i, r := range read {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return heapLook{}, false
		}
		*r.to = s[i].Value.Uint64()
	}
	h.free = free + objects - min(objects, h.live)
	return h, int64(gogc) >= 0
}

// due reports whether memory should be given back now, the heap looking
// like now after looking like before an interval ago.
func (g giveBack) due(before, now heapLook) bool {
	return now.free >= max(g.atLeast, now.live/4) && now.allocated-before.allocated < now.free/10
}

// run looks at the heap every g.every until ctx ends, and gives back its
// free memory when due. The zero giveBack gives nothing back.
func (g giveBack) run(ctx context.Context, log *slog.Logger) {
	if g.every <= 0 {
		return
	}
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	before, _ := lookAtHeap()
	var last time.Time
	wait := g.gap
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now, ok := lookAtHeap()
		if !ok {
			continue
		}
		if g.due(before, now) && time.Since(last) >= wait {
			start := time.Now()
			debug.FreeOSMemory()
			last = time.Now()
			after, _ := lookAtHeap()
			returned := int64(after.released) - int64(now.released)
			if returned < int64(g.atLeast) {
				wait = min(2*wait, 16*g.gap) // what looked free was mostly live
			} else {
				wait = g.gap
			}
			log.Debug("gave memory back to the OS", "free_at_most", mibText(now.free),
				"returned", mibText(uint64(max(returned, 0))), "took", last.Sub(start).Round(time.Millisecond))
			now = after
		}
		before = now
	}
}

// mibText writes bytes in MiB to a tenth.
func mibText(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
