package chat

// A second lane for direct writes (queue.direct). Writing a quiet chat's
// message to a thousand clients itself, the broadcaster spends its time in
// a thousand system calls on one core, and the last clients wait for the
// first (BENCHMARKS.md, "Where the fan-out's tail comes from"). On a
// machine of several cores, a helper goroutine writes to half of a large
// room's clients while the broadcaster writes to the other half; the
// broadcaster waits for it before going on, so every client's frames keep
// their order. One wake-up a message instead of one for each client.
type lane struct {
	jobs chan laneJob
	done chan []*client // a job's clients that the frame did not fit
}

type laneJob struct {
	f  *frames
	to []*client
}

// laneMin is the fewest recipients worth a second lane: for fewer, the
// wake-up costs about what it saves.
const laneMin = 64

func newLane() *lane {
	return &lane{jobs: make(chan laneJob), done: make(chan []*client)}
}

// run does the jobs until jobs is closed (the broadcaster stops).
func (l *lane) run(h *Hub) {
	for j := range l.jobs {
		l.done <- l.do(h, j)
	}
}

func (l *lane) do(h *Hub, j laneJob) (failed []*client) {
	// As in the broadcaster: a panic is an error entry, and the lane goes
	// on with the next job (the broadcaster waits for this one).
	defer h.recordRecovered(placeBroadcaster, "the chat room")
	return streamAll(j.f, j.to)
}

// streamAll hands f to each of to, writing it directly where it can
// (queue.stream), and returns the clients it did not fit.
func streamAll(f *frames, to []*client) (failed []*client) {
	for _, c := range to {
		if !c.stream(f, true) {
			failed = append(failed, c)
		}
	}
	return failed
}

// fanOut hands f, a quiet chat's message, to the live clients of its room
// (see queue.direct), sharing the writes with the lane when there is one
// and the room is large, and takes out of the live set those it did not
// fit, as deliver does.
func (b *broadcaster) fanOut(f *frames) {
	to := b.fan[:0]
	for cl := range b.recipients(toLive, f.room, nil) {
		to = append(to, cl)
	}
	var failed []*client
	if b.lane != nil && len(to) >= laneMin {
		half := len(to) / 2
		b.lane.jobs <- laneJob{f: f, to: to[half:]}
		failed = streamAll(f, to[:half])
		failed = append(failed, <-b.lane.done...)
	} else {
		failed = streamAll(f, to)
	}
	for _, cl := range failed {
		b.fallBehind(cl, f.id-1)
	}
	clear(to)
	b.fan = to[:0]
}
