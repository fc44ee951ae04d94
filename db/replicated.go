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
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable is in a Commit's error when the replicated log could not
// confirm the batch: too few of its replicas are reachable (this node is
// cut off, or most nodes are down). The sender may send again with the same
// cid: if the entry did reach the log after all, the send is a duplicate.
var ErrUnavailable = errors.New("the cluster cannot confirm writes now")

// ErrNotReplicated is Append's refusal, on a cluster, of a draft it cannot
// share: one in a room or from an account the log did not make (made on
// one node before the cluster shared them). Stored on one node only, it
// would tell the nodes apart for good.
var ErrNotReplicated = errors.New("this chat runs on several servers, which do not share this yet")

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
	// Last returns the sequence of the log's last entry: what a node
	// that has applied as far has seen of every node's writes.
	Last(ctx context.Context) (int64, error)
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

	waiting  sync.Mutex
	pending  map[string]request[T]         // published, not yet applied here, by key
	commands map[string]chan commandResult // the same, of commands (run)
	acked    atomic.Int64                  // the highest sequence a publish confirmed
	// accounts and rooms are the ids of the accounts and rooms the log
	// made that Append has met (fromLog): the accounts that may post and,
	// with the default room, the rooms that take messages.
	accounts sync.Map
	rooms    sync.Map
	// later is set while the log's next entry is a command of a later
	// version (ErrLaterVersion): this node applies nothing until it is
	// upgraded.
	later atomic.Bool
	// reads are the read markers moved here since readsEvery ago, for
	// the other nodes: the newest of each account in each room.
	readsMu   sync.Mutex
	reads     map[[2]int64]int64 // {room, user} → id
	readsStop chan struct{}      // closed by Close: stop, without waiting for an answer
	readsDone chan struct{}
	applied   atomic.Int64  // the sequence applied up to
	caught    chan struct{} // nudged whenever applied moves
	// catching holds the one catchUp that asks the log at a time.
	catching chan struct{}
	kick     chan struct{} // followAgain: ends the applier's reader
	kicked   atomic.Bool   // followAgain: follow again without a pause

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
	ctx := context.Background()
	from, err := s.LogPosition(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.CheckJoin(ctx); err != nil {
		return nil, err
	}
	var salt [6]byte
	rand.Read(salt[:])
	ctx, cancel := context.WithCancel(ctx)
	w := &ReplicatedWriter[T]{
		store:     s,
		stream:    stream,
		onCommit:  onCommit,
		maxBatch:  maxBatch,
		prefix:    fmt.Sprintf("%x-", salt),
		inbox:     inbox[T]{in: make(chan request[T], 2*maxBatch)},
		pending:   make(map[string]request[T]),
		commands:  make(map[string]chan commandResult),
		caught:    make(chan struct{}, 1),
		catching:  make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
		ctx:       ctx,
		cancel:    cancel,
		pubDone:   make(chan struct{}),
		appDone:   make(chan struct{}),
		reads:     make(map[[2]int64]int64),
		readsStop: make(chan struct{}),
		readsDone: make(chan struct{}),
	}
	w.applied.Store(from)
	s.shared = w
	go w.publish()
	go w.apply(from)
	go w.shareReads()
	return w, nil
}

// Append queues a draft for the stream, as Writer.Append does. It refuses
// (ErrNotReplicated) a draft in a room or from an account the log did not
// make: a room or an account of this database alone (made before they
// were shared) is another, or none, on the other nodes; and, as
// ErrUnavailable, any draft while this node waits for an upgrade.
func (w *ReplicatedWriter[T]) Append(ctx context.Context, d Draft, tag T) error {
	if err := w.health(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if d.roomOr() != DefaultRoom && !w.fromLog(ctx, &w.rooms, "rooms", d.roomOr()) {
		return ErrNotReplicated
	}
	if d.UserID != 0 && !w.fromLog(ctx, &w.accounts, "accounts", d.UserID) {
		return ErrNotReplicated
	}
	return w.put(ctx, d, tag)
}

// fromLog reports whether the log made the row id of table (rooms or
// accounts): as the database says (from_log), the first time Append meets
// it, and then as known remembers. A row the log made keeps that mark.
func (w *ReplicatedWriter[T]) fromLog(ctx context.Context, known *sync.Map, table string, id int64) bool {
	if _, ok := known.Load(id); ok {
		return true
	}
	var made bool
	err := w.store.read.QueryRowContext(ctx, "SELECT from_log FROM "+table+" WHERE id = ?", id).Scan(&made)
	if err != nil || !made {
		return false
	}
	known.Store(id, true)
	return true
}

// Close stops taking drafts, publishes those already queued, waits (up to
// a bound) until this node has applied everything it published, and stops.
func (w *ReplicatedWriter[T]) Close() {
	w.close()
	<-w.pubDone
	close(w.readsStop)
	<-w.readsDone
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
			data, err := json.Marshal(batch[i].draft)
			if err != nil {
				data = nil // refused below without publishing
			}
			entries[i] = StreamEntry{Key: w.key(), Data: data}
			w.pending[entries[i].Key] = batch[i]
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
			failed.Items = append(failed.Items, Item[T]{Stored: Stored{Message: r.draft.unstored()}, Tag: r.tag, Local: true})
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

// firstRefollow is how long the applier first waits to follow the log
// again when its reader ended (the stream not there yet, as a new
// cluster elects its leaders, or a hole); the waits double up to
// retryApply while it gets nowhere.
const firstRefollow = 50 * time.Millisecond

func (w *ReplicatedWriter[T]) apply(from int64) {
	defer close(w.appDone)
	pause := firstRefollow
	for w.follow(from) {
		if w.applied.Load() > from {
			pause = firstRefollow
		}
		from = w.applied.Load()
		if w.kicked.Swap(false) {
			continue // followAgain: at once
		}
		select {
		case <-time.After(pause):
			pause = min(2*pause, retryApply)
		case <-w.kick:
			// followAgain while it waits: at once, and the kick is
			// not left to end the next reader as soon as it starts.
			w.kicked.Store(false)
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
	go func() {
		select {
		case <-w.kick:
			cancel()
		case <-ctx.Done():
		}
	}()
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

// applyBatch applies batch, entries in order with no hole: each run of
// drafts in one transaction, each command in one of its own. It reports
// false when the writer closed first.
func (w *ReplicatedWriter[T]) applyBatch(batch []StreamEntry) bool {
	for len(batch) > 0 {
		if isCommand(batch[0].Data) {
			if !w.applyCommand(batch[0]) {
				return false
			}
			batch = batch[1:]
			continue
		}
		n := 1
		for n < len(batch) && !isCommand(batch[n].Data) {
			n++
		}
		if !w.applyDrafts(batch[:n]) {
			return false
		}
		batch = batch[n:]
	}
	return true
}

// applyDrafts stores batch, drafts in order with no hole, in one
// transaction, and hands it on; a failed transaction is tried again, since
// nothing after it may be applied first. It reports false when the writer
// closed first.
func (w *ReplicatedWriter[T]) applyDrafts(batch []StreamEntry) bool {
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
		if !w.failed(batch[0].Seq, err) {
			return false
		}
	}
}

// applyCommand applies one command, and answers this node's caller of
// run, if it published it; on the other nodes, sessions it ended and an
// account it changed go on in a Commit of their own, so that the chat
// closes, or renames, their pages there too.
func (w *ReplicatedWriter[T]) applyCommand(e StreamEntry) bool {
	for {
		r, err := w.store.applyCommandAt(w.ctx, e.Data, e.Seq)
		w.later.Store(errors.Is(err, ErrLaterVersion))
		if err == nil {
			w.waiting.Lock()
			done, ok := w.commands[e.Key]
			delete(w.commands, e.Key)
			w.waiting.Unlock()
			// What its pages show goes to the chat. A room's change goes
			// on every node, the one that made it too, so that each
			// node's list of rooms follows the log's order (two changes
			// to one room, made through two nodes at once, end the same
			// everywhere); it goes before the answer, so that whoever
			// asked finds it done. The other changes go to the nodes
			// that did not make them: where one was made, whoever asked
			// acts on the answer, as on a single node (and counts the
			// pages it closed).
			c := Commit[T]{Room: r.RoomChange}
			if !ok {
				c.Ended, c.Account, c.Deleted, c.Read, c.Notify = r.Ended, r.Change, r.Deleted, r.Read, r.Notify
			}
			if r.Err == nil && c.FromCommand() {
				w.onCommit(c)
			}
			if ok {
				done <- r
			}
			w.moved(e.Seq)
			return true
		}
		if !w.failed(e.Seq, err) {
			return false
		}
	}
}

// readsEvery is how often a node tells the others of the read markers
// that moved through it: one command for each account and room read
// meanwhile, however many times it was read.
const readsEvery = 2 * time.Second

func (w *ReplicatedWriter[T]) shareRead(room, user, id int64) {
	w.readsMu.Lock()
	defer w.readsMu.Unlock()
	k := [2]int64{room, user}
	w.reads[k] = max(w.reads[k], id)
}

// shareReads publishes the read markers gathered, every readsEvery, one
// attempt each time: a marker the log does not take (no quorum, or the
// node stopping) stays this node's alone, as a read is not worth a wait.
func (w *ReplicatedWriter[T]) shareReads() {
	defer close(w.readsDone)
	t := time.NewTicker(readsEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.publishReads()
		case <-w.readsStop:
			return
		}
	}
}

func (w *ReplicatedWriter[T]) publishReads() {
	w.readsMu.Lock()
	reads := w.reads
	w.reads = make(map[[2]int64]int64)
	w.readsMu.Unlock()
	var entries []StreamEntry
	for k, id := range reads {
		data, err := json.Marshal(command{Op: opRead, RoomID: k[0], AccountID: k[1], ID: id})
		if err != nil {
			continue
		}
		entries = append(entries, StreamEntry{Key: w.key(), Data: data})
	}
	if len(entries) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishAttempt)
	defer cancel()
	go func() {
		select {
		case <-w.readsStop: // Close does not wait for the answer
			cancel()
		case <-ctx.Done():
		}
	}()
	w.stream.Publish(ctx, entries)
}

// health is ErrLaterVersion while this node waits for an upgrade to apply
// the log's next command.
func (w *ReplicatedWriter[T]) health() error {
	if w.later.Load() {
		return ErrLaterVersion
	}
	return nil
}

// failed reports that applying the log at seq failed, and waits before it
// is tried again; false if the writer closed meanwhile.
func (w *ReplicatedWriter[T]) failed(seq int64, err error) bool {
	w.onCommit(Commit[T]{Err: fmt.Errorf("apply the log at %d: %w", seq, err)})
	select {
	case <-time.After(retryApply):
		return true
	case <-w.ctx.Done():
		return false
	}
}

// moved records that this node applied the log up to seq.
func (w *ReplicatedWriter[T]) moved(seq int64) {
	w.applied.Store(seq)
	select {
	case w.caught <- struct{}{}:
	default:
	}
}

// run publishes a command and waits until this node applied it: see
// command.go. A command the cluster could not confirm is ErrUnavailable,
// as a draft is; once ctx ends the command may still be applied.
func (w *ReplicatedWriter[T]) run(ctx context.Context, c command) (commandResult, error) {
	if w.ctx.Err() != nil {
		return commandResult{}, ErrClosed
	}
	if err := w.health(); err != nil {
		return commandResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return commandResult{}, err
	}
	e := StreamEntry{Key: w.key(), Data: data}
	done := make(chan commandResult, 1)
	w.waiting.Lock()
	w.commands[e.Key] = done
	w.waiting.Unlock()
	// forget stops waiting, and reports whether the command was still
	// unapplied: false once the applier took its answer channel.
	forget := func() bool {
		w.waiting.Lock()
		defer w.waiting.Unlock()
		_, waiting := w.commands[e.Key]
		delete(w.commands, e.Key)
		return waiting
	}
	entries := []StreamEntry{e}
	if errs := w.publishAll(entries); errs[0] != nil {
		forget()
		return commandResult{}, errs[0]
	}
	w.waiting.Lock()
	if entries[0].Seq > w.acked.Load() {
		w.acked.Store(entries[0].Seq)
	}
	w.waiting.Unlock()
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		if !forget() {
			// Applied meanwhile: its answer is on its way, and the
			// caller is to act on it as on any other.
			return <-done, nil
		}
		return commandResult{}, fmt.Errorf("not applied here yet: %w", ctx.Err())
	case <-w.ctx.Done():
		forget()
		return commandResult{}, ErrClosed
	}
}

// catchUpFor bounds how long a read that found nothing waits for this
// node to apply what the log holds (catchUp).
const catchUpFor = 2 * time.Second

// catchUp waits until this node has applied the log as far as it reaches
// now, or catchUpFor has passed: a sign-in made through another node a
// moment ago is then known here. Callers ask one at a time, so that many
// reads for sessions no one made (a stranger's guesses) cost the log one
// question at a time.
func (w *ReplicatedWriter[T]) catchUp(ctx context.Context) {
	if w.health() != nil {
		return // it applies nothing until upgraded: nothing to wait for
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpFor)
	defer cancel()
	select {
	case w.catching <- struct{}{}:
		defer func() { <-w.catching }()
	case <-ctx.Done():
		return
	}
	// The log may not answer for a moment (a new cluster electing its
	// stream's leader): ask again until it does, within the bound.
	last, err := w.stream.Last(ctx)
	for err != nil {
		select {
		case <-time.After(firstRefollow):
		case <-ctx.Done():
			return
		}
		last, err = w.stream.Last(ctx)
	}
	// Polled: caught is Close's.
	// A reader that stands still for stalledFor is replaced, as often
	// as it takes: the next one may stall too, as a new cluster settles.
	moved, at := time.Now(), w.applied.Load()
	for w.applied.Load() < last {
		if now := w.applied.Load(); now != at {
			moved, at = time.Now(), now
		} else if time.Since(moved) > stalledFor {
			w.followAgain()
			moved = time.Now()
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// stalledFor is how long catchUp waits for this node to apply anything of
// what the log holds before it has the applier follow the log anew.
const stalledFor = 500 * time.Millisecond

// followAgain has the applier drop its reader of the log and follow it
// again, at once, from where it got to. A reader can stall: the ordered
// consumer behind it (package cluster) notices a lost server-side consumer
// only after two missed heartbeats, 10 s, and until then this node applies
// nothing. As a new cluster settles, a person who signed in through one
// node was then signed out on another.
func (w *ReplicatedWriter[T]) followAgain() {
	w.kicked.Store(true)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// key names a new publication of this writer's.
func (w *ReplicatedWriter[T]) key() string {
	return w.prefix + strconv.FormatInt(w.count.Add(1), 36)
}

// delivered hands an applied batch on, with the tags of the drafts this
// writer published.
func (w *ReplicatedWriter[T]) delivered(batch []StreamEntry, stored []Stored, took, inCommit time.Duration) {
	c := Commit[T]{Items: make([]Item[T], len(batch)), Took: took, InCommit: inCommit}
	w.waiting.Lock()
	for i, e := range batch {
		c.Items[i].Stored = stored[i]
		c.Items[i].Local = strings.HasPrefix(e.Key, w.prefix)
		if r, ok := w.pending[e.Key]; ok {
			delete(w.pending, e.Key)
			c.Items[i].Tag = r.tag
		}
	}
	w.waiting.Unlock()
	w.moved(batch[len(batch)-1].Seq)
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
