package db

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// ErrClosed is returned by Append once the log is closing.
var ErrClosed = errors.New("writer closed")

// ErrPanic is in a Commit's error when storing the batch panicked. Nothing
// was stored (the transaction rolls back as the panic unwinds it), and the
// writer goes on with the next batch.
var ErrPanic = errors.New("panic while storing")

// DefaultMaxBatch caps how many messages one transaction holds.
const DefaultMaxBatch = 256

// maxYields caps the yields between commits (see loop).
const maxYields = 8

// Commit is one transaction's outcome, handed to the Writer's callback in
// commit order. Items are in submission order, which is id order for the
// messages this commit stored. On error nothing was stored; Items then carry
// the drafts' text with ID 0 so the caller can tell each sender.
type Commit[T any] struct {
	Items []Item[T]
	Err   error
	Took  time.Duration // the transaction, from BEGIN to the end of COMMIT
	// InCommit is the part of Took spent in COMMIT: writing the WAL and,
	// at synchronous=FULL, fsyncing it. No checkpoint runs in it (see
	// checkpoint.go).
	InCommit time.Duration
	// Ended and Account, from a ReplicatedWriter, are what a command of
	// the log made through another node changed that open pages show:
	// sign-in sessions it ended (a sign-out, a new password), whose
	// sockets on this node are to close too; an account renamed,
	// deactivated or banned; a room made or changed, or its people; the
	// messages of a banned person deleted; a room read. Such a commit has
	// no Items.
	Ended   []int64
	Account *AccountChange
	Room    *RoomChange // a room made or changed, or its people
	// Deleted is the messages an admin deleted with a person's ban, by
	// room, oldest first, in one command of a log written before each
	// deletion was an event of its own (opDeleteMessagesOf).
	Deleted map[int64][]int64
	// Read is a read marker moved through another node: the person's
	// pages here count the room's unread messages anew.
	Read *ReadMark
	// Notify is a person's new level in a room, set through another
	// node: their pages here hear of it.
	Notify *NotifyChange
}

// ReadMark is an account's read marker in a room: read up to message ID.
type ReadMark struct {
	Room, User, ID int64
}

// NotifyChange is what an account chose to hear of a room (NotifyAll,
// NotifyMentions or NotifyNone).
type NotifyChange struct {
	Room, User int64
	Level      string
}

// RoomChange is a change to a room, or to who is in it, that open pages
// show.
type RoomChange struct {
	ID       int64   // the room's
	Room     *Room   // the room as it is now; nil if only its people changed
	Created  bool    // Room is new
	Archived bool    // Room was archived by this change
	Joined   []int64 // accounts put in the room
	Left     []int64 // accounts taken out of it
}

// FromCommand reports whether c carries what a command of a cluster's log
// changed (Ended, Account, Room, Deleted, Read, Notify) rather than
// messages.
func (c Commit[T]) FromCommand() bool {
	return len(c.Ended) > 0 || c.Account != nil || c.Room != nil || len(c.Deleted) > 0 || c.Read != nil || c.Notify != nil
}

// AccountChange is a change to an account that open pages, and the
// addresses refused, show.
type AccountChange struct {
	ID       int64
	Name     string   // its new name; "" if not renamed
	Role     string   // its new role; "" if not changed
	Ended    bool     // deactivated (or banned): its pages close
	Ban      bool     // banned: they say so
	Banned   []string // addresses a ban refuses from now on (chat.AddressKey)
	Unbanned []string // addresses an unban frees
}

// Item pairs a stored message with the tag it was submitted with.
type Item[T any] struct {
	Stored
	Tag T
	// Local is whether the draft was appended through this node: on a
	// single node, every one; on a cluster, not those applied from
	// another node's publishing (whose Tag is zero). It holds even when
	// this node's publish lost its answer and the tag with it.
	Local bool
}

// Log is the writer's contract, what the chat core depends on: Append a
// draft (with a tag the log carries through untouched), and every committed
// batch reaches the consumer the log was built with, one at a time, in
// commit order, its messages in id order; a failed batch arrives with its
// error and nothing stored. Close stops appends, delivers what was already
// appended, and returns when the last batch has been handed on.
//
// Writer, over SQLite, implements it today. A replicated log (several nodes
// serving one chat, each with its SQLite as a local projection) can stand
// behind the same interface: nothing above it may depend on SQLite's
// autoincrement being the source of order, only on the order of delivery.
type Log[T any] interface {
	Append(ctx context.Context, d Draft, tag T) error
	Close()
}

var _ Log[struct{}] = (*Writer[struct{}])(nil)

type request[T any] struct {
	draft Draft
	tag   T
}

// Writer is the single goroutine that writes messages. It takes everything
// pending (up to a cap), stores it in one transaction, commits, and only then
// hands the committed batch to its callback, so one message alone is
// committed at once and a crowd shares one fsync (group commit). The tag is
// the caller's, carried through untouched (who sent it, whom to answer).
type Writer[T any] struct {
	inbox[T]
	store    *Store
	onCommit func(Commit[T])
	maxBatch int
	done     chan struct{}
}

// inbox is a writer's queue of drafts: Append blocks while it is full
// (back-pressure on the senders) and fails once it is closed.
type inbox[T any] struct {
	mu     sync.RWMutex // held for reading while submitting, for writing to close
	closed bool
	in     chan request[T]
}

// put queues a draft, or fails with ErrClosed once close has begun, or
// with the context's error.
func (q *inbox[T]) put(ctx context.Context, d Draft, tag T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.in <- request[T]{draft: d, tag: tag}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops taking drafts; those queued stay to be read.
func (q *inbox[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.in)
	}
}

// NewWriter starts the writer goroutine. onCommit runs on that goroutine,
// once per transaction, in commit order; while it runs, nothing else is
// written, so it should hand the batch on rather than do slow work.
func NewWriter[T any](s *Store, maxBatch int, onCommit func(Commit[T])) *Writer[T] {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	w := &Writer[T]{
		inbox:    inbox[T]{in: make(chan request[T], 2*maxBatch)},
		store:    s,
		onCommit: onCommit,
		maxBatch: maxBatch,
		done:     make(chan struct{}),
	}
	go w.loop()
	return w
}

// Append queues a draft. It blocks while the queue is full (back-pressure on
// the senders) and fails with ErrClosed once Close has begun, or with the
// context's error.
func (w *Writer[T]) Append(ctx context.Context, d Draft, tag T) error {
	return w.put(ctx, d, tag)
}

// Close stops taking drafts, commits everything already queued (handing it
// to the callback as usual) and returns when the writer goroutine is done.
func (w *Writer[T]) Close() {
	w.close()
	<-w.done
}

// insert stores one batch. A panic becomes an error every sender is told of:
// unrecovered, it would end the process on this goroutine.
func (w *Writer[T]) insert(drafts []Draft) (stored []Stored, inCommit time.Duration, err error) {
	return safeInsert(w.store, drafts, 0)
}

// safeInsert is Store.insert with a panic turned into ErrPanic.
func safeInsert(s *Store, drafts []Draft, upTo int64) (stored []Stored, inCommit time.Duration, err error) {
	defer func() {
		if v := recover(); v != nil {
			stored, err = nil, fmt.Errorf("%w: %v", ErrPanic, v)
		}
	}()
	return s.insert(context.Background(), drafts, upTo)
}

// fill adds to batch what is waiting in in, up to max in all, without
// waiting for more.
func fill[E any](batch []E, in <-chan E, max int) []E {
	for len(batch) < max {
		select {
		case e, ok := <-in:
			if !ok {
				return batch
			}
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

func (w *Writer[T]) loop() {
	defer close(w.done)
	batch := make([]request[T], 0, w.maxBatch)
	drafts := make([]Draft, 0, w.maxBatch)
	for first := range w.in {
		batch = fill(append(batch[:0], first), w.in, w.maxBatch)
		drafts = drafts[:0]
		for _, r := range batch {
			drafts = append(drafts, r.draft)
		}
		// The commit is not tied to any sender's context: once queued, a
		// message is written even if its sender has gone.
		began := time.Now()
		stored, inCommit, err := w.insert(drafts)

		c := Commit[T]{Items: make([]Item[T], len(batch)), Err: err, Took: time.Since(began), InCommit: inCommit}
		for i, r := range batch {
			c.Items[i].Tag, c.Items[i].Local = r.tag, true
			if err == nil {
				c.Items[i].Stored = stored[i]
			} else {
				c.Items[i].Message = r.draft.unstored()
			}
		}
		w.onCommit(c)
		// Let senders that were just answered in this process (REST sends,
		// a crowd of them) queue their next messages before the next batch
		// is taken: yield while the queue still grows, a few times at most.
		// Taken at once, they reached the queue in two waves on 2 cores and
		// each commit carried about half of them (32 of 64 in the Writer
		// benchmark, ~60 with the yields). With no one else to run, a yield
		// returns at once: a lone message is still committed without delay,
		// and no timer is involved. The cap bounds how long messages already
		// queued wait for the next commit when a busy machine makes each
		// yield slow.
		for i, queued := 0, -1; i < maxYields && queued != len(w.in) && len(w.in) < w.maxBatch; i++ {
			queued = len(w.in)
			runtime.Gosched()
		}
	}
}

// unstored is d as a Commit that failed carries it: its text, no id.
func (d Draft) unstored() Message {
	return Message{User: d.User, UserID: userID(d.UserID), Message: d.Message}
}
