package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable is in a Commit's error when the replicated log could not
// confirm the batch: too few of its replicas are reachable (this node is
// cut off, or most nodes are down). The sender may send again with the same
// cid: if the entry did reach the log after all, the send is a duplicate.
var ErrUnavailable = errors.New("the cluster cannot confirm writes now")

// ErrNotReplicated is Append's refusal of a draft the cluster cannot yet
// share: one from an account, or in a room other than DefaultRoom.
// Accounts and rooms are each node's own so far (their ids name different
// people and rooms on different nodes), so storing such a draft on every
// node would put it under another person's name or in another room.
var ErrNotReplicated = errors.New("only guests' messages in the main room are shared across a cluster so far")

// Stream is a replicated, ordered log of entries: what a ReplicatedWriter
// publishes drafts to and applies from. Package cluster implements it over
// NATS JetStream.
type Stream interface {
	// Publish appends the entries, in order, and returns once each is
	// stored by a quorum of the log's replicas (its Seq then set) or known
	// not to be: errs[i] is entries[i]'s error, ErrUnavailable when the
	// quorum could not be reached. An entry whose Key the log saw recently
	// is not appended again; Seq is then the first one's.
	Publish(ctx context.Context, entries []StreamEntry) (errs []error)
	// Entries sends every entry after seq to the channel it returns, in
	// order, as they are appended, until ctx ends; then it closes it.
	Entries(ctx context.Context, after int64) (<-chan StreamEntry, error)
}

// StreamEntry is one entry of a Stream.
type StreamEntry struct {
	Seq  int64  // its place in the log, from 1; the log sets it
	Key  string // names one publication, for the log's de-duplication
	Data []byte
}

// publishTimeout bounds how long Close waits for this node to apply what
// it published.
const publishTimeout = 5 * time.Second

// Publishing a batch: one attempt waits at most publishAttempt for the
// quorum's answer; a batch every entry of which the stream refused is
// published again after firstRepublish, then twice as long each time up
// to a second, for up to republishFor in all. Past that the quorum is
// taken as unreachable, and the senders told so. republishFor outlasts a
// JetStream leader election (its Raft waits 4 to 9 s before electing
// anew), so that a node dying under load costs its senders a wait, not a
// refusal.
const (
	publishAttempt = 2 * time.Second
	firstRepublish = 100 * time.Millisecond
	republishFor   = 12 * time.Second
)

// ReplicatedWriter is a Log over a Stream: each node of a cluster runs one
// over its own Store. Drafts are published to the stream, a group at a time
// (the Writer's group commit, with a quorum's acknowledgement in place of
// an fsync); every node applies the stream in order to its Store, many
// entries a transaction, each draft stored under its stream sequence as id
// and at the time its publisher gave it, so that every node's projection
// is the same. A committed batch reaches onCommit once this node has
// applied it, with the tags of the drafts this writer published (the zero
// T for the others'): persist, then broadcast, on every node.
//
// De-duplication by cid happens in the projection, as on a single node
// (Store.Insert): it is deterministic, so every node gives a repeated cid
// the same outcome, over the store's whole DedupWindow rather than the
// stream's two minutes.
type ReplicatedWriter[T any] struct {
	store    *Store
	stream   Stream
	onCommit func(Commit[T])
	maxBatch int
	prefix   string       // this writer's keys: a random prefix, then a count
	count    atomic.Int64 // keys issued

	inbox[T]

	waiting sync.Mutex
	pending map[string]request[T] // published, not yet applied here, by key
	acked   atomic.Int64          // the highest sequence a publish confirmed
	applied atomic.Int64          // the sequence applied up to
	caught  chan struct{}         // nudged whenever applied moves

	ctx     context.Context // ends the applier
	cancel  context.CancelFunc
	pubDone chan struct{}
	appDone chan struct{}
}

var _ Log[struct{}] = (*ReplicatedWriter[struct{}])(nil)

// NewReplicatedWriter starts publishing to and applying from stream, from
// where s left off (LogPosition). onCommit runs on the applier goroutine,
// once per applied batch, in stream order, and once per batch the stream
// refused (Err set, nothing stored), from the publisher's goroutine.
func NewReplicatedWriter[T any](s *Store, stream Stream, maxBatch int, onCommit func(Commit[T])) (*ReplicatedWriter[T], error) {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	from, err := s.LogPosition(context.Background())
	if err != nil {
		return nil, err
	}
	var salt [6]byte
	rand.Read(salt[:])
	ctx, cancel := context.WithCancel(context.Background())
	w := &ReplicatedWriter[T]{
		store:    s,
		stream:   stream,
		onCommit: onCommit,
		maxBatch: maxBatch,
		prefix:   fmt.Sprintf("%x-", salt),
		inbox:    inbox[T]{in: make(chan request[T], 2*maxBatch)},
		pending:  make(map[string]request[T]),
		caught:   make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
		pubDone:  make(chan struct{}),
		appDone:  make(chan struct{}),
	}
	w.applied.Store(from)
	go w.publish()
	go w.apply(from)
	return w, nil
}

// Append queues a draft for the stream, as Writer.Append does; a draft
// from an account or outside DefaultRoom is refused (ErrNotReplicated).
func (w *ReplicatedWriter[T]) Append(ctx context.Context, d Draft, tag T) error {
	if d.UserID != 0 || d.roomOr() != DefaultRoom || d.File != nil {
		return ErrNotReplicated
	}
	return w.put(ctx, d, tag)
}

// Close stops taking drafts, publishes those already queued, waits (up to
// a bound) until this node has applied everything it published, and stops.
func (w *ReplicatedWriter[T]) Close() {
	w.close()
	<-w.pubDone
	deadline := time.After(publishTimeout)
	for w.applied.Load() < w.acked.Load() {
		select {
		case <-w.caught:
		case <-deadline:
			w.cancel()
			<-w.appDone
			return
		}
	}
	w.cancel()
	<-w.appDone
}

// Applied is the stream sequence this node has applied up to.
func (w *ReplicatedWriter[T]) Applied() int64 { return w.applied.Load() }

func (w *ReplicatedWriter[T]) publish() {
	defer close(w.pubDone)
	batch := make([]request[T], 0, w.maxBatch)
	for first := range w.in {
		batch = fill(append(batch[:0], first), w.in, w.maxBatch)
		now := w.store.now().UnixMilli()
		entries := make([]StreamEntry, len(batch))
		w.waiting.Lock()
		for i := range batch {
			batch[i].draft.At = now
			key := w.prefix + strconv.FormatInt(w.count.Add(1), 36)
			data, err := json.Marshal(batch[i].draft)
			if err != nil {
				data = nil // refused below without publishing
			}
			entries[i] = StreamEntry{Key: key, Data: data}
			w.pending[key] = batch[i]
		}
		w.waiting.Unlock()

		errs := w.publishAll(entries)

		var failed Commit[T]
		w.waiting.Lock()
		for i, e := range entries {
			if errs[i] == nil {
				if e.Seq > w.acked.Load() {
					w.acked.Store(e.Seq)
				}
				continue
			}
			// Applied already (a late answer) or never: who takes the
			// request out of pending answers its sender, once.
			r, ok := w.pending[e.Key]
			if !ok {
				continue
			}
			delete(w.pending, e.Key)
			failed.Items = append(failed.Items, Item[T]{Stored: Stored{Message: r.draft.unstored()}, Tag: r.tag})
			failed.Err = errs[i]
		}
		w.waiting.Unlock()
		if failed.Items != nil {
			w.onCommit(failed)
		}
	}
}

// publishAll publishes entries, and publishes them again while the stream
// refuses every one of them as unavailable and republishFor allows: a
// leader election (seconds, after a node dies) refuses everything until
// it is over, and a sender that does not send again (the tutorial's
// clients) would otherwise be told its message was not stored. The same
// keys make an entry the stream did store, its answer lost, count once. A
// batch refused only in part is not published again: its refused entries
// would go after the ones stored, out of their order. One attempt waits
// at most publishAttempt for its answer: a leader that died holding a
// batch never answers, and the batch goes to the next one instead.
func (w *ReplicatedWriter[T]) publishAll(entries []StreamEntry) []error {
	ctx, cancel := context.WithTimeout(context.Background(), republishFor)
	defer cancel()
	pause := firstRepublish
	for {
		attempt, done := context.WithTimeout(ctx, publishAttempt)
		errs := w.stream.Publish(attempt, entries)
		done()
		if slices.ContainsFunc(errs, func(err error) bool { return !errors.Is(err, ErrUnavailable) }) {
			return errs // stored, or refused for good, in whole or in part
		}
		select {
		case <-time.After(pause):
			pause = min(2*pause, time.Second)
		case <-ctx.Done():
			return errs
		}
	}
}

// retryApply is how long the applier waits before trying a batch again
// that its Store failed to write.
const retryApply = time.Second

func (w *ReplicatedWriter[T]) apply(from int64) {
	defer close(w.appDone)
	for w.follow(from) {
		from = w.applied.Load()
		select {
		case <-time.After(retryApply):
		case <-w.ctx.Done():
			return
		}
	}
}

// follow applies the stream from after from, in order, until the writer
// closes (false) or the entries stop following one another (true: follow
// again from where it got to). The stream has no holes (nothing is ever
// deleted from it, and a refused publish takes no sequence), so an entry
// past the next one means a reader that skipped some: a node whose own
// copy of the stream is still being rebuilt served it. Skipping them
// would lose them from this node's history for good.
func (w *ReplicatedWriter[T]) follow(from int64) bool {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	entries, err := w.stream.Entries(ctx, from)
	if err != nil {
		w.onCommit(Commit[T]{Err: fmt.Errorf("follow the log: %w", err)})
		return w.ctx.Err() == nil
	}
	next := from + 1
	batch := make([]StreamEntry, 0, w.maxBatch)
	for first := range entries {
		batch = fill(append(batch[:0], first), entries, w.maxBatch)
		// What was applied already (a reader that started again hands
		// some out twice) is dropped; a hole ends the batch before it.
		batch = slices.DeleteFunc(batch, func(e StreamEntry) bool { return e.Seq < next })
		hole := false
		for i, e := range batch {
			if want := next + int64(i); e.Seq != want {
				w.onCommit(Commit[T]{Err: fmt.Errorf("follow the log: entry %d came where %d was due; following again from there", e.Seq, want)})
				batch, hole = batch[:i], true
				break
			}
			// Nothing this code publishes is empty: an empty entry is
			// one a rebuilding copy holds the place of but not yet the
			// contents, and applied it would store nothing, for good.
			if len(e.Data) == 0 {
				w.onCommit(Commit[T]{Err: fmt.Errorf("follow the log: entry %d came empty; following again from there", e.Seq)})
				batch, hole = batch[:i], true
				break
			}
		}
		if len(batch) > 0 {
			if !w.applyBatch(batch) {
				return false
			}
			next = batch[len(batch)-1].Seq + 1
		}
		if hole {
			return true
		}
	}
	return w.ctx.Err() == nil
}

// applyBatch stores batch, entries in order with no hole, in one
// transaction, and hands it on; a failed transaction is tried again, since
// nothing after it may be applied first. It reports false when the writer
// closed first.
func (w *ReplicatedWriter[T]) applyBatch(batch []StreamEntry) bool {
	drafts := make([]Draft, len(batch))
	for i, e := range batch {
		// An entry that is not a draft (none this code publishes) stores
		// nothing, on every node alike; its place still moves the
		// position on.
		if err := json.Unmarshal(e.Data, &drafts[i]); err != nil || drafts[i].At == 0 {
			drafts[i] = Draft{Change: Edit, Target: 0, At: 1}
		}
		drafts[i].ID = e.Seq
	}
	for {
		began := time.Now()
		stored, inCommit, err := safeInsert(w.store, drafts, batch[len(batch)-1].Seq)
		if err == nil {
			w.delivered(batch, stored, time.Since(began), inCommit)
			return true
		}
		w.onCommit(Commit[T]{Err: fmt.Errorf("apply the log at %d: %w", batch[0].Seq, err)})
		select {
		case <-time.After(retryApply):
		case <-w.ctx.Done():
			return false
		}
	}
}

// delivered hands an applied batch on, with the tags of the drafts this
// writer published.
func (w *ReplicatedWriter[T]) delivered(batch []StreamEntry, stored []Stored, took, inCommit time.Duration) {
	c := Commit[T]{Items: make([]Item[T], len(batch)), Took: took, InCommit: inCommit}
	w.waiting.Lock()
	for i, e := range batch {
		c.Items[i].Stored = stored[i]
		if r, ok := w.pending[e.Key]; ok {
			delete(w.pending, e.Key)
			c.Items[i].Tag = r.tag
		}
	}
	w.waiting.Unlock()
	w.applied.Store(batch[len(batch)-1].Seq)
	select {
	case w.caught <- struct{}{}:
	default:
	}
	w.onCommit(c)
}

// LogPosition is how far this database has applied a replicated log: the
// sequence of the last entry applied, 0 if none ever was.
func (s *Store) LogPosition(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.read.QueryRowContext(ctx, "SELECT seq FROM log_position").Scan(&seq); err != nil {
		return 0, fmt.Errorf("log position: %w", err)
	}
	return seq, nil
}

// LogPositionOf is LogPosition of the database file at path, opened read
// only, as a tool beside a running node reads it (`nochat cluster status`).
func LogPositionOf(ctx context.Context, path string) (int64, error) {
	d, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var seq int64
	if err := d.QueryRowContext(ctx, "SELECT seq FROM log_position").Scan(&seq); err != nil {
		return 0, fmt.Errorf("log position of %s: %w", path, err)
	}
	return seq, nil
}
