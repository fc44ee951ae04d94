package chat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// Observer is told what the hub does, for metrics. Its methods are called
// on the hub's goroutines and must return quickly.
type Observer interface {
	// Committed is a transaction of the writer: took from BEGIN to the end
	// of COMMIT, inCommit the part in COMMIT (the WAL's write and fsync).
	Committed(messages int, took, inCommit time.Duration, err error)
	Broadcast(messages int, took time.Duration) // new messages handed to the live set
	Error(kind string)                          // an entry in the error log
}

type nopObserver struct{}

func (nopObserver) Committed(int, time.Duration, time.Duration, error) {}
func (nopObserver) Broadcast(int, time.Duration)                       {}
func (nopObserver) Error(string)                                       {}

// RecordErrorAt adds an occurrence to the recent-errors log the admin sees.
// kind and place (where in NoChat: a route, a refusal code, a loop) must be
// fixed texts from the code, never from a request: the log keeps one entry
// per kind and place, which is what bounds it. detail (which may quote the
// request) and subject (the connection or request it concerns) are kept as
// the entry's latest sample.
func (h *Hub) RecordErrorAt(kind, place, detail, subject string) {
	h.errors.record(kind, place, detail, subject)
	h.series.addError()
	h.opts.Observer.Error(kind)
	attrs := []any{"detail", Cut(detail, maxErrorDetail), "subject", Cut(subject, maxErrorSubject)}
	if place != "" {
		// The log collapses repeats by message and place (main's collapseHandler).
		attrs = append([]any{"place", place}, attrs...)
	}
	h.log.Info(kind, attrs...)
}

// ClearErrors empties the recent-errors log.
func (h *Hub) ClearErrors(ctx context.Context) error {
	return h.errors.clear(ctx)
}

// Connection is one open WebSocket session, as the admin sees it.
type Connection struct {
	ID           string
	Remote       string
	UserAgent    string
	Protocol     string
	User         string
	UserID       int64  // the account; 0 for a guest
	Role         string // the account's role; "" for a guest
	Since        time.Time
	LastActivity time.Time
	Received     int64 // frames from the client
	Sent         int64 // frames to the client
	// Rooms are the rooms the connection sees now, by id: the ones its
	// messages come from.
	Rooms []int64
}

// Snapshot is the live state of the room for the admin dashboard.
type Snapshot struct {
	Stats       // Online is len(Connections)
	Taken       time.Time
	Started     time.Time
	Peak        int
	Connections []Connection // oldest first
	People      []Person     // the same connections, by person
	Errors      []db.ErrorEntry
	Series      Series
	// InRoom is, for each room with a connection in it, how many
	// connections see it now (the broadcaster's inRoom index).
	InRoom map[int64]int
}

// Snapshot returns the room's state now, with up to maxErrors errors.
func (h *Hub) Snapshot(maxErrors int) Snapshot {
	now := time.Now()
	var conns []Connection
	var peak int
	var inRoom map[int64]int
	h.b.read(func() {
		peak = h.b.peak
		inRoom = make(map[int64]int, len(h.b.inRoom))
		for id, in := range h.b.inRoom {
			inRoom[id] = len(in)
		}
		conns = make([]Connection, 0, len(h.b.conns))
		for c := range h.b.conns {
			conns = append(conns, c.connection())
		}
	})
	slices.SortFunc(conns, func(a, b Connection) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.ID, b.ID))
	})
	st := h.Stats()
	st.Online = len(conns)
	return Snapshot{
		Stats:       st,
		Taken:       now,
		Started:     h.started,
		Peak:        peak,
		Connections: conns,
		People:      byPerson(conns),
		InRoom:      inRoom,
		Errors:      h.errors.list(maxErrors),
		Series:      h.series.snapshot(now),
	}
}

// Person is one person's open connections, as the admin sees them: an
// account with every tab and device it has open, or the guests who go by
// one name (as presence counts them: see presenceKey).
type Person struct {
	User        string
	UserID      int64        // 0 for guests
	Role        string       // "" for guests
	Connections []Connection // oldest first
}

// Guest reports whether the connections are guests'.
func (p Person) Guest() bool { return p.UserID == 0 }

// byPerson groups connections (oldest first) by person: accounts by name,
// case aside, then guests by name, each group's connections oldest first.
func byPerson(conns []Connection) []Person {
	byKey := make(map[presenceKey]int)
	var people []Person
	for _, c := range conns {
		k := presenceKey{userID: c.UserID}
		if c.UserID == 0 {
			k.guest = c.User
		}
		i, ok := byKey[k]
		if !ok {
			i = len(people)
			byKey[k] = i
			people = append(people, Person{User: c.User, UserID: c.UserID, Role: c.Role})
		}
		people[i].Connections = append(people[i].Connections, c)
	}
	slices.SortFunc(people, func(a, b Person) int {
		if a.Guest() != b.Guest() {
			if a.Guest() {
				return 1
			}
			return -1
		}
		return cmp.Or(
			strings.Compare(strings.ToLower(a.User), strings.ToLower(b.User)),
			strings.Compare(a.User, b.User),
			cmp.Compare(a.UserID, b.UserID),
		)
	})
	return people
}

// ErrNoSession is returned for a session id that is not connected.
var ErrNoSession = errors.New("no such session")

// Disconnect closes a session with 1008 and a reason, and returns the
// connection it closed. Its client may reconnect.
func (h *Hub) Disconnect(id, reason string) (Connection, error) {
	var c *client
	var conn Connection
	h.b.read(func() {
		for cl := range h.b.conns {
			if cl.id == id {
				c, conn = cl, cl.connection()
				return
			}
		}
	})
	if c == nil {
		return Connection{}, fmt.Errorf("disconnect %q: %w", id, ErrNoSession)
	}
	c.closeWith(websocket.ClosePolicyViolation, reason)
	return conn, nil
}

// connection is c as the admin sees it. It runs on the broadcaster.
func (c *client) connection() Connection {
	return Connection{
		ID:           c.id,
		Remote:       c.remote,
		UserAgent:    c.agent,
		Protocol:     string(c.proto),
		User:         c.name(),
		UserID:       c.userID,
		Role:         c.roleNow(),
		Since:        c.since,
		LastActivity: time.Unix(0, max(c.lastRead.Load(), c.lastWrite.Load())),
		Received:     c.received.Load(),
		Sent:         c.sent.Load(),
		Rooms:        c.roomIDs(),
	}
}

// Prune deletes the messages retention no longer keeps (see
// db.Store.Prune: those stored before olderThan, zero for no age limit, and
// all but the newest keepNewest, 0 for no count limit) and then has the
// broadcaster drop them from its replay window, so that a client resuming
// with ?after= is never handed a message the store no longer holds. It
// returns how many messages it deleted.
func (h *Hub) Prune(ctx context.Context, olderThan time.Time, keepNewest int) (int64, error) {
	n, below, err := h.store.Prune(ctx, olderThan, keepNewest, db.DefaultPruneBatch)
	if below > 0 {
		// Wait for it, so that a client connecting after Prune returns is
		// replayed nothing pruned; unless the broadcaster stops first.
		h.b.sendWait(opPrune{below: below})
	}
	return n, err
}

// deleteBatch is how many of a person's messages DeleteMessagesOf hands
// the log at once: a writer's batch (db.DefaultMaxBatch).
const deleteBatch = db.DefaultMaxBatch

// deleteWait bounds how long DeleteMessagesOf waits for a batch's answers:
// a writer commits one in well under a second, a cluster's log in a few.
const deleteWait = time.Minute

// DeleteMessagesOf deletes every message an account stored, each as Delete
// does, as a deletion of the log: the rooms' open pages are told, and so
// is a page that was away, when it resumes. The deletions go to the log a
// batch at a time, oldest first, each batch answered before the next is
// read. It returns how many it deleted. A message the log refuses to
// delete (on a cluster, one in a room a node made on its own before rooms
// were shared) is kept and the rest go on; the error then says how many
// were kept and why. After any other error (the hub closing, the store
// failing) those deleted stay deleted, and calling it again deletes the
// rest. An account that still sends while this runs may keep a message
// sent after the last batch: a ban (handlers) closes its sockets and
// sessions first.
func (h *Hub) DeleteMessagesOf(ctx context.Context, userID int64) (int, error) {
	var (
		n, kept int
		why     error // why the first message kept was refused
		after   int64 // the newest message read so far
	)
	keep := func(err error) {
		kept++
		if why == nil {
			why = err
		}
	}
	for {
		msgs, err := h.store.MessagesOf(ctx, userID, after, deleteBatch)
		if err != nil {
			return n, err
		}
		if len(msgs) == 0 {
			break
		}
		after = msgs[len(msgs)-1].ID
		replies := make([]chan sendResult, 0, len(msgs))
		var stop error // the log takes no more drafts
		for _, m := range msgs {
			o := origin{reply: make(chan sendResult, 1)}
			err := h.writer.Append(ctx, db.Draft{Change: db.Delete, Target: m.ID, Room: m.Room, Moderator: true}, o)
			switch {
			case err == nil:
				replies = append(replies, o.reply)
			case errors.Is(err, db.ErrNotReplicated):
				keep(appendRefusal(err)) // this message's room: the others go on
			default:
				stop = appendRefusal(err)
			}
			if stop != nil {
				break
			}
		}
		// Every draft the log took is answered, also after a refusal.
		timeout := time.NewTimer(deleteWait)
		for _, reply := range replies {
			var r sendResult
			select {
			case r = <-reply:
			case <-ctx.Done():
				timeout.Stop()
				return n, fmt.Errorf("%w (%w)", ErrUnconfirmed, ctx.Err())
			case <-h.ctx.Done():
				timeout.Stop()
				return n, ErrShutdown
			case <-timeout.C:
				return n, fmt.Errorf("%w (no answer from the log in %v)", ErrUnconfirmed, deleteWait)
			}
			switch {
			case r.err == nil:
				n++
			case errors.Is(r.stored.Refused, db.ErrNoMessage):
				// Deleted already, by someone else.
			default:
				keep(r.err)
			}
		}
		timeout.Stop()
		if stop != nil {
			return n, stop
		}
	}
	if kept > 0 {
		return n, fmt.Errorf("%d of the messages could not be deleted: %w", kept, why)
	}
	return n, nil
}
