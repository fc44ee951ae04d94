package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
	"golang.org/x/time/rate"

	"nochat/db"
)

// Options configure a Hub. Zero fields take the defaults below.
type Options struct {
	Log           *slog.Logger
	MaxMessageLen int           // characters in a message (2,000)
	MaxNameLen    int           // characters in a user name (32)
	MaxFrameBytes int64         // bytes in one incoming frame (16 KiB)
	SessionBuffer int           // frames queued per session (64), the message stream 3/4 of them
	ReplayLimit   int           // messages replayed on resume before asking for a resync (1,000)
	SlowTimeout   time.Duration // how long a client may make no progress reading (30 s)
	PingPeriod    time.Duration // keepalive ping interval (25 s)
	PongWait      time.Duration // a peer silent this long is dropped (60 s)
	MaxBatch      int           // messages per transaction (256)
	// Stream, when set, is a replicated log this node shares with the
	// other nodes of a cluster (package cluster): messages are published
	// to it and applied from it (db.ReplicatedWriter). Nil: this node's
	// own SQLite writer, a single node.
	Stream db.Stream
	// Bans, on a cluster, hears of the addresses a ban made through any
	// node refuses (banned) or an unban frees: whoever refuses banned
	// addresses at the door (handlers.Auth) keeps its list with it.
	Bans func(addresses []string, banned bool)
	// Refused, when set, is asked as a connection joins whether a ban
	// refuses its address (handlers.Auth.Banned): one opened as a ban was
	// made passed the door before it and joins after the ban closed the
	// address's pages, and is closed as they were.
	Refused func(ip string) bool
	// Peers, in a cluster, carries presence between the nodes (peers.go);
	// nil for a single node.
	Peers          Peers
	TypingInterval time.Duration // at most one typing frame per client per interval (2 s)
	EditWindow     time.Duration // how long after sending a person may edit a message (15 min)

	// Abuse limits. Zero values take the defaults; a negative value turns
	// the limit off.
	MsgRate       float64 // messages per second per connection, and guestShare times that per address over its guests' sockets (10)
	MsgBurst      int     // messages a connection may send at once (20); an address's guests, guestShare times that
	MaxConns      int     // WebSocket sessions in total (10,000)
	MaxConnsPerIP int     // WebSocket sessions per client address (100)
	// BotRate and BotBurst limit each bot account's messages and changes,
	// over its sockets and REST together (1 a second, bursts of 5).
	BotRate  float64
	BotBurst int

	// AllowOrigins lists the origins (scheme://host[:port]) of pages served
	// elsewhere that may open sockets; "*" allows any. Same-origin pages and
	// clients that send no Origin are always allowed.
	AllowOrigins []string
	// TrustProxy takes the client address from X-Forwarded-For, for a
	// server behind a reverse proxy.
	TrustProxy bool

	// Guests is what people without an account may do (GuestsOn).
	Guests Guests

	Observer Observer // told of commits, broadcasts and errors, for metrics

	// Pusher, if not nil, is told of each new message for each member
	// away who wants to hear of it (notify.go); PushGrace is how long
	// "away" is (DefaultPushGrace).
	Pusher    Pusher
	PushGrace time.Duration
	// Posted, if set, is told of each new message sent through this node
	// (on a cluster, not of those sent through another) once it is committed
	// and handed out (bots' outgoing webhooks): never of edits,
	// deletions or reactions.
	Posted PostedFunc
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxMessageLen, 2000)
	def(&o.MaxNameLen, 32)
	if o.MaxFrameBytes <= 0 {
		// Room for the longest message however it is written: a character
		// is at most 4 bytes of UTF-8, or 6 as a JSON escape.
		o.MaxFrameBytes = max(16<<10, int64(6*o.MaxMessageLen+1024))
	}
	def(&o.SessionBuffer, 64)
	o.SessionBuffer = max(o.SessionBuffer, 8)
	def(&o.ReplayLimit, 1000)
	defDur(&o.SlowTimeout, 30*time.Second)
	defDur(&o.PingPeriod, 25*time.Second)
	defDur(&o.PongWait, 60*time.Second)
	def(&o.MaxBatch, db.DefaultMaxBatch)
	defDur(&o.TypingInterval, 2*time.Second)
	defDur(&o.EditWindow, DefaultEditWindow)
	defDur(&o.PushGrace, DefaultPushGrace)
	if o.MsgRate == 0 {
		o.MsgRate = 10
	}
	def(&o.MsgBurst, 20)
	if o.BotRate == 0 {
		o.BotRate = 1
	}
	def(&o.BotBurst, 5)
	if o.MaxConns == 0 {
		o.MaxConns = 10000
	}
	if o.MaxConnsPerIP == 0 {
		o.MaxConnsPerIP = 100
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Guests == "" {
		o.Guests = GuestsOn
	}
}

// Hub runs the chat room.
type Hub struct {
	log    *slog.Logger
	opts   Options
	store  *db.Store
	writer db.Log[origin] // the ordered log: append, then committed batches to deliver
	m      *melody.Melody

	// Frame budgets per session (queue.go): the message stream may have
	// streamLimit frames outstanding; melody's buffer takes melodyLimit,
	// two slots staying free for close frames.
	streamLimit int32
	melodyLimit int32

	ctx    context.Context // cancelled when the hub closes: stops catch-up readers
	cancel context.CancelFunc
	closed atomic.Bool

	dir       directory     // every room and membership (rooms.go)
	naming    chan struct{} // held while a room's name is checked and stored (holdNaming)
	b         broadcaster   // the one registry of connections, and its goroutine
	admission admission     // connections counted against the limits (edge.go)
	bots      botLimits     // each bot's message limit (bot.go)
	// guestSends is the message limit of each address over all its guests'
	// sockets, nil when messages are not limited: three times a socket's,
	// so that a guest with a hundred sockets sends no faster than three,
	// and one guest sending flat out leaves room for others behind the
	// same address (a home's router, a school's).
	guestSends *KeyedLimiter

	started    time.Time
	errors     *errorLog
	errorsDone chan struct{} // closed when flushErrors has stopped
	pings      keepalive     // the connections pinged, slot by slot (keepalive.go)
	pingsDone  chan struct{} // closed when keepalive has stopped
	series     series

	// committed is the newest id the writer has committed, which the
	// store's readers (REST) may show before the broadcaster has it.
	committed atomic.Int64

	fellBehind  atomic.Int64 // times a session left the live set to catch up
	slowDropped atomic.Int64 // sessions disconnected as too slow
	broadcasted atomic.Int64 // messages handed to the live set

	// Notifications (notify.go): messages waiting for notifyLoop, which
	// closes noticesDone when it stops; who is away since when; messages
	// dropped because the queue was full.
	notices     chan db.Message
	noticesDone chan struct{}
	away        awayClock
	pushDropped atomic.Int64

	// joining, set only by tests, runs as a socket is about to join the
	// broadcaster, after ServeWS let it in: the window recheck closes.
	joining func()
	// committing, set only by tests, runs between a commit and its
	// hand-over to the broadcaster: the moment the store's readers have
	// what the broadcaster does not yet.
	committing func()
}

// origin is who a submitted message came from and whom to answer.
type origin struct {
	c     *client         // the WebSocket sender, nil for REST
	cid   string          // the sender's client id for the message
	reply chan sendResult // the REST sender waiting for the commit, or nil
	quote *db.Quote       // what a reply answers, as it shows it
}

type sendResult struct {
	stored db.Stored
	err    error
}

// newestIn is the newest id of a commit: of a message, or of a change's
// event.
func newestIn(c db.Commit[origin]) int64 {
	var id int64
	for _, it := range c.Items {
		id = max(id, it.Message.ID)
		if it.Change != nil {
			id = max(id, it.Change.ID)
		}
	}
	return id
}

// guestShare is an address's message limit over all its guests' sockets,
// in sockets' limits (MsgRate, MsgBurst).
const guestShare = 3

// New builds a hub over an open store and starts its writer and broadcaster.
func New(store *db.Store, opts Options) (*Hub, error) {
	opts.setDefaults()
	latest, err := store.LatestID(context.Background())
	if err != nil {
		return nil, fmt.Errorf("start chat: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		log:         opts.Log,
		opts:        opts,
		store:       store,
		ctx:         ctx,
		cancel:      cancel,
		started:     time.Now(),
		errors:      newErrorLog(store),
		errorsDone:  make(chan struct{}),
		pingsDone:   make(chan struct{}),
		melodyLimit: int32(min(opts.SessionBuffer, melodyBuffer) - 2),
		streamLimit: int32(opts.SessionBuffer * 3 / 4),
		notices:     make(chan db.Message, notifyQueue),
		noticesDone: make(chan struct{}),
		bots:        botLimits{rate: opts.BotRate, burst: opts.BotBurst},
		naming:      make(chan struct{}, 1),
	}
	// The log outlives a restart; the dashboard's count of the last hour
	// starts from what it knows of that hour.
	h.series.seedErrors(h.errors.list(errorLogSize), h.started)
	if opts.MsgRate > 0 {
		h.guestSends = NewKeyedLimiter(rate.Limit(guestShare*opts.MsgRate), guestShare*opts.MsgBurst)
	}
	if err := h.dir.load(ctx, store); err != nil {
		cancel()
		return nil, fmt.Errorf("start chat: %w", err)
	}
	h.b.init(h, latest)
	h.committed.Store(latest)

	m := melody.New()
	m.Config.MaxMessageSize = opts.MaxFrameBytes
	m.Config.MessageBufferSize = min(opts.SessionBuffer, melodyBuffer)
	m.Config.PingPeriod = noPings // the hub pings: see keepalive
	m.Config.PongWait = opts.PongWait
	// A write that cannot finish in the slow-client bound means the peer has
	// stopped reading; melody then closes the session.
	m.Config.WriteWait = opts.SlowTimeout
	// Memory per connection matters on a Pi: a small read buffer of the
	// connection's own (edge.go), and write buffers from a pool, so an
	// idle connection holds none. A write buffer takes a whole "messages"
	// frame: gorilla writes a frame larger than its buffer in two parts,
	// two system calls.
	m.Upgrader.ReadBufferSize = readBufferSize
	m.Upgrader.WriteBufferSize = maxBatchBytes
	m.Upgrader.WriteBufferPool = &sync.Pool{}
	m.Upgrader.Subprotocols = Protocols
	// ServeWS checks the origin itself before upgrading, so that a refusal
	// gets a reason and an entry in the error log.
	m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	m.HandleConnect(h.onConnect)
	m.HandleDisconnect(h.onDisconnect)
	m.HandleMessage(h.onMessage)
	m.HandleMessageBinary(h.onBinary)
	m.HandleSentMessage(func(s *melody.Session, b []byte) {
		// On melody's write goroutine, which nothing above recovers.
		c := clientOf(s)
		defer h.recoverSession(c)
		c.wrote(b)
	})
	m.HandleError(h.onError)
	h.m = m

	onCommit := func(c db.Commit[origin]) {
		h.committed.Store(max(h.committed.Load(), newestIn(c)))
		if h.committing != nil {
			h.committing()
		}
		// Hand the batch to the broadcaster and return to writing. Waiting
		// here when the broadcaster is busy is the back-pressure we want.
		h.b.send(opCommit{c})
	}
	if opts.Stream == nil {
		h.writer = db.NewWriter(store, opts.MaxBatch, onCommit)
	} else if h.writer, err = db.NewReplicatedWriter(store, opts.Stream, opts.MaxBatch, onCommit); err != nil {
		cancel()
		return nil, fmt.Errorf("start chat: %w", err)
	}
	h.b.start()
	if opts.Peers != nil {
		h.listenToPeers()
		opts.Peers.Answer(h.answerPeer)
	}
	go h.flushErrors()
	go h.notifyLoop()
	go h.keepalive()
	return h, nil
}

// Send stores a message from outside a WebSocket (REST), broadcasts it like
// any other, and returns it once it is committed and handed to every client.
func (h *Hub) Send(ctx context.Context, user, text string) (db.Message, error) {
	st, err := h.SendAs(ctx, Identity{}, user, text, "")
	return st.Message, err
}

// AllowGuestSend takes one message from the limit the guests of the
// client address ip share (guestShare sockets' worth), for a guest's REST
// send: their sockets draw from the same limit, so that a guest at an
// address sends no faster over both. It reports whether one was left.
func (h *Hub) AllowGuestSend(ip string) bool {
	return h.guestSends == nil || h.guestSends.Allow(ip)
}

// SendAs is Send from whom id names, with a key that names the send, as a
// cid does on nochat.v1 (a REST Idempotency-Key; "" for none). A signed-in
// person's message goes under their account's name, whatever user says; a
// guest's under user, which may not be a member's name, and only if guests
// may send. A send from the same user with the same key within the store's
// de-duplication window is not stored again: SendAs then returns the
// message first stored, marked Duplicate; with another text, ErrCIDReused.
// If ctx ends after the message was queued, it returns ErrUnconfirmed: the
// message is stored all the same.
func (h *Hub) SendAs(ctx context.Context, id Identity, user, text, key string) (db.Stored, error) {
	r, _ := h.Room(db.DefaultRoom)
	return h.SendTo(ctx, id, r, user, text, key)
}

// SendTo is SendAs to room r: refused unless id may post there (AccessTo).
func (h *Hub) SendTo(ctx context.Context, id Identity, r db.Room, user, text, key string) (db.Stored, error) {
	return h.Reply(ctx, id, r, user, text, key, 0)
}

// Reply is SendTo answering the message replyTo of the same room (0: none).
func (h *Hub) Reply(ctx context.Context, id Identity, r db.Room, user, text, key string, replyTo int64) (db.Stored, error) {
	return h.send(ctx, id, r, user, text, key, replyTo, nil)
}

// send is Reply with the file the message comes with (nil: none); a
// message with a file may have no text.
func (h *Hub) send(ctx context.Context, id Identity, r db.Room, user, text, key string, replyTo int64, file *db.Upload) (db.Stored, error) {
	if id.Guest() {
		if err := h.mayGuestSend(); err != nil {
			return db.Stored{}, err
		}
	}
	access, err := h.AccessTo(ctx, id, r)
	if err != nil {
		return db.Stored{}, fmt.Errorf("%w (%w)", ErrStore, err)
	}
	if !access.Post {
		return db.Stored{}, access.Why
	}
	user, err = cleanName(user, h.opts.MaxNameLen)
	if err != nil {
		return db.Stored{}, err
	}
	if !id.Guest() {
		user = id.Name
	} else if err := h.guestName(ctx, user); err != nil {
		return db.Stored{}, err
	}
	msg, err := cleanMessage(text, h.opts.MaxMessageLen)
	if errors.Is(err, ErrEmpty) && file != nil {
		msg, err = "", nil // the file is the message
	}
	if err != nil {
		return db.Stored{}, err
	}
	if !ValidCID(key) {
		return db.Stored{}, ErrBadCID
	}
	d := db.Draft{User: user, UserID: id.UserID, Message: msg, CID: key, Room: r.ID, ReplyTo: replyTo, File: file}
	var o origin
	if err := h.draftExtras(ctx, &d, &o, id.Role); err != nil {
		return db.Stored{}, err
	}
	st, err := h.commit(ctx, d, o)
	if o.quote != nil && st.Message.ReplyTo != nil {
		st.Message.ReplyTo = o.quote
	}
	return st, err
}

// commit appends d for a sender outside a WebSocket (REST, the dashboard)
// and waits for its commit: what it became, or why not. If ctx ends after
// d was queued, it returns ErrUnconfirmed: d is stored all the same.
func (h *Hub) commit(ctx context.Context, d db.Draft, o origin) (db.Stored, error) {
	o.reply = make(chan sendResult, 1)
	if err := h.writer.Append(ctx, d, o); err != nil {
		return db.Stored{}, appendRefusal(err)
	}
	select {
	case r := <-o.reply:
		return r.stored, r.err
	case <-ctx.Done():
		return db.Stored{}, fmt.Errorf("%w (%w)", ErrUnconfirmed, ctx.Err())
	}
}

// appendRefusal is what a sender is told when the log did not take its
// draft.
func appendRefusal(err error) error {
	switch {
	case errors.Is(err, db.ErrClosed):
		return ErrShutdown
	case errors.Is(err, db.ErrNotReplicated):
		return ErrNotShared
	}
	return err
}

// socketRefusal is appendRefusal for a socket's send, appended under the
// hub's context, which ends only when the hub closes.
func socketRefusal(err error) error {
	if errors.Is(err, db.ErrNotReplicated) {
		return ErrNotShared
	}
	return ErrShutdown
}

var errNoReply = &Refusal{"bad_request", "reply_to: no such message in this room"}

// draftExtras completes a new message's draft before it goes to the log:
// what it replies to (in its room, quoted for o), whom it mentions; and
// renders its HTML here, off the broadcaster, which then finds it in the
// cache.
func (h *Hub) draftExtras(ctx context.Context, d *db.Draft, o *origin, role string) error {
	d.Bot = role == db.RoleBot
	if d.Bot {
		// A bot sends at a person's pace at most (its rate limit): one
		// read a message costs nothing, and is never stale.
		a, err := h.store.Avatar(ctx, d.UserID)
		if err != nil {
			return fmt.Errorf("%w (%w)", ErrStore, err)
		}
		d.Avatar = a
	}
	if d.ReplyTo == 0 && !strings.Contains(d.Message, "@") {
		RenderHTML(d.Message) // the common case: nothing to look up
		return nil
	}
	r, ok := h.Room(d.Room)
	if !ok {
		return ErrNoRoom
	}
	if d.ReplyTo != 0 {
		m, err := h.store.Get(ctx, d.ReplyTo)
		switch {
		case errors.Is(err, db.ErrNotFound) || err == nil && m.Room != r.ID:
			return errNoReply
		case err != nil:
			return fmt.Errorf("%w (%w)", ErrStore, err)
		}
		q := db.QuoteOf(m)
		o.quote = &q
	}
	ms, err := h.mentionsIn(ctx, r, d.UserID, role, d.Message)
	if err != nil {
		return fmt.Errorf("%w (%w)", ErrStore, err)
	}
	d.Mentions = ms
	MessageHTML(d.Message, ms)
	return nil
}

// Stats are counters of the hub since it started.
type Stats struct {
	Online      int   // open WebSocket sessions
	Broadcast   int64 // messages handed out
	FellBehind  int64 // times a session fell behind and was fed from memory or the database
	SlowDropped int64 // sessions disconnected for making no progress
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Online:      h.Online(),
		Broadcast:   h.broadcasted.Load(),
		FellBehind:  h.fellBehind.Load(),
		SlowDropped: h.slowDropped.Load(),
	}
}

// Limits are the sizes the hub accepts, for pages that check them before
// sending.
type Limits struct {
	MaxMessageLen int           // characters in a message, counted as cleanMessage does
	MaxNameLen    int           // characters in a user name
	EditWindow    time.Duration // how long after sending a person may edit a message
}

// Limits returns the hub's size limits.
func (h *Hub) Limits() Limits {
	return Limits{MaxMessageLen: h.opts.MaxMessageLen, MaxNameLen: h.opts.MaxNameLen, EditWindow: h.opts.EditWindow}
}

// LatestID is the newest message id handed out: a page rendered after
// reading it resumes its socket from it, with no gap in any room.
func (h *Hub) LatestID() int64 { return h.b.published.Load() }

// Online returns the number of open WebSocket sessions.
func (h *Hub) Online() int {
	return int(h.b.online.Load())
}

// waitFor polls done until it reports true (and returns true) or ctx ends.
func (h *Hub) waitFor(ctx context.Context, done func() bool) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Close shuts the room down in the order that loses nothing: refuse new
// sessions; commit every message already queued and hand it to the clients
// (so each sender still gets its ack); then close every session with 1001
// "going away" after the frames queued to it, and wait for them to go, until
// ctx ends. The caller closes the store afterwards.
func (h *Hub) Close(ctx context.Context) error {
	if h.closed.Swap(true) {
		return nil
	}
	h.writer.Close()    // its last batches are queued to the broadcaster
	h.b.read(func() {}) // and delivered
	// Let sessions that fell behind catch up, so every client, even one on
	// echo-protocol that cannot resume, gets every stored message before
	// its close frame. A session still behind when ctx ends resumes with
	// ?after= when it reconnects.
	behind := 0
	h.waitFor(ctx, func() bool {
		return !h.b.read(func() { behind = h.b.behind() }) || behind == 0
	})
	if behind > 0 {
		h.log.Warn("closing with sessions still catching up", "sessions", behind)
	}
	h.cancel() // stop catch-up readers

	h.b.read(func() {
		for c := range h.b.conns {
			c.closeWith(websocket.CloseGoingAway, "server shutting down")
		}
	})

	var err error
	if !h.waitFor(ctx, func() bool { return h.Online() == 0 }) {
		err = fmt.Errorf("close chat: %d sessions still open: %w", h.Online(), ctx.Err())
	}
	h.b.read(func() {
		for c := range h.b.conns {
			c.s.WebsocketConnection().Close() // cut whatever is left
		}
	})
	h.m.Close()
	h.b.send(opStop{})
	<-h.b.quit
	<-h.errorsDone
	<-h.pingsDone
	<-h.noticesDone // stopped by h.cancel: it reads the store no more
	if ferr := h.errors.flush(context.Background()); ferr != nil {
		h.log.Error("save error log", "err", ferr)
	}
	return err
}
