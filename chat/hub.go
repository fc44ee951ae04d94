// Package chat is NoChat's real-time core: WebSocket sessions (through
// melody), the two subprotocols, the send pipeline into the database writer,
// and the single broadcaster that hands every stored message to every client
// in id order, feeding clients that fell behind from the database.
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"nochat/db"
)

// Options configure a Hub. Zero fields take the defaults below.
type Options struct {
	Log            *slog.Logger
	MaxMessageLen  int           // characters in a message (2,000)
	MaxNameLen     int           // characters in a user name (32)
	MaxFrameBytes  int64         // bytes in one incoming frame (16 KiB)
	SessionBuffer  int           // frames queued per session (64)
	ReplayLimit    int           // messages replayed on resume before asking for a resync (1,000)
	SlowTimeout    time.Duration // how long a client may make no progress reading (30 s)
	PingPeriod     time.Duration // keepalive ping interval (25 s)
	PongWait       time.Duration // a peer silent this long is dropped (60 s)
	MaxBatch       int           // messages per transaction (256)
	TypingInterval time.Duration // at most one typing frame per client per interval (2 s)
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
		o.MaxFrameBytes = 16 << 10
	}
	def(&o.SessionBuffer, 64)
	o.SessionBuffer = max(o.SessionBuffer, 8)
	def(&o.ReplayLimit, 1000)
	defDur(&o.SlowTimeout, 30*time.Second)
	defDur(&o.PingPeriod, 25*time.Second)
	defDur(&o.PongWait, 60*time.Second)
	def(&o.MaxBatch, db.DefaultMaxBatch)
	defDur(&o.TypingInterval, 2*time.Second)
}

// Hub runs the chat room.
type Hub struct {
	log    *slog.Logger
	opts   Options
	store  *db.Store
	writer *db.Writer[origin]
	m      *melody.Melody

	// Frame budgets per session, out of melody's buffer: the message stream
	// may fill streamLimit; acks, errors and presence may use the rest; two
	// slots stay free for close frames, which melody does not count as sent.
	streamLimit  int32
	controlLimit int32

	ctx    context.Context // cancelled when the hub closes: stops catch-up readers
	cancel context.CancelFunc

	events chan func()   // work for the broadcaster goroutine, in order
	quit   chan struct{} // closed when the broadcaster has stopped
	closed atomic.Bool

	mu      sync.Mutex
	clients map[*client]struct{} // every open session

	fellBehind  atomic.Int64 // times a session left the live set to catch up
	slowDropped atomic.Int64 // sessions disconnected as too slow
	broadcasted atomic.Int64 // messages handed to the live set

	// Owned by the broadcaster goroutine (see broadcast.go), except that
	// catch-up readers may read b.recent and b.floor under recentMu.
	b        broadcaster
	recentMu sync.RWMutex
}

// origin is who a submitted message came from and whom to answer.
type origin struct {
	c     *client         // the WebSocket sender, nil for REST
	cid   string          // the sender's client id for the message
	reply chan sendResult // the REST sender waiting for the commit, or nil
}

type sendResult struct {
	msg db.Message
	err error
}

// New builds a hub over an open store and starts its writer and broadcaster.
func New(store *db.Store, opts Options) (*Hub, error) {
	opts.setDefaults()
	latest, err := store.LatestID(context.Background())
	if err != nil {
		return nil, fmt.Errorf("start chat: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		log:          opts.Log,
		opts:         opts,
		store:        store,
		ctx:          ctx,
		cancel:       cancel,
		events:       make(chan func(), 1024),
		quit:         make(chan struct{}),
		clients:      make(map[*client]struct{}),
		controlLimit: int32(opts.SessionBuffer - 2),
		streamLimit:  int32(opts.SessionBuffer * 3 / 4),
	}
	h.b.init(latest)

	m := melody.New()
	m.Config.MaxMessageSize = opts.MaxFrameBytes
	m.Config.MessageBufferSize = opts.SessionBuffer
	m.Config.PingPeriod = opts.PingPeriod
	m.Config.PongWait = opts.PongWait
	// A write that cannot finish in the slow-client bound means the peer has
	// stopped reading; melody then closes the session.
	m.Config.WriteWait = opts.SlowTimeout
	m.Upgrader.Subprotocols = Protocols
	m.Upgrader.CheckOrigin = sameOrigin
	m.HandleConnect(h.onConnect)
	m.HandleDisconnect(h.onDisconnect)
	m.HandleMessage(h.onMessage)
	m.HandleMessageBinary(h.onBinary)
	m.HandleSentMessage(func(s *melody.Session, _ []byte) { clientOf(s).wrote() })
	m.HandleError(h.onError)
	h.m = m

	h.writer = db.NewWriter(store, opts.MaxBatch, func(c db.Commit[origin]) {
		// Hand the batch to the broadcaster and return to writing. Waiting
		// here when the broadcaster is busy is the back-pressure we want.
		h.do(func() { h.deliver(c) })
	})
	go h.broadcast()
	return h, nil
}

// sameOrigin accepts upgrades without an Origin header (the tutorial's
// clients, curl, bots) and those from a page served by this same host;
// a page on another site may not open a socket in its visitor's name.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// ServeWS upgrades r to a WebSocket session on the subprotocol it offers.
// An upgrade offering neither subprotocol is refused with 400 and a reason.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request) {
	proto := pickProtocol(websocket.Subprotocols(r))
	if proto == "" {
		h.log.Info("refused upgrade", "remote", r.RemoteAddr, "reason", "no supported subprotocol",
			"offered", r.Header.Get("Sec-WebSocket-Protocol"))
		http.Error(w, "unsupported WebSocket subprotocol: offer nochat.v1 or echo-protocol", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	after := int64(-1)
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "after must be a message id (a whole number, 0 or more)", http.StatusBadRequest)
			return
		}
		after = n
	}
	user := DefaultUser
	if v := q.Get("user"); v != "" {
		name, err := cleanName(v, h.opts.MaxNameLen)
		if err != nil {
			http.Error(w, "user: "+err.Error(), http.StatusBadRequest)
			return
		}
		user = name
	}
	if h.closed.Load() {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	c := newClient(proto, user, r.RemoteAddr, r.UserAgent(), after)
	if err := h.m.HandleRequestWithKeys(w, r, map[string]any{clientKey: c}); err != nil {
		// The upgrader has already answered (400 on a bad handshake, 403
		// on a foreign origin).
		h.log.Info("refused upgrade", "remote", r.RemoteAddr, "err", err)
	}
}

func pickProtocol(offered []string) Protocol {
	for _, want := range Protocols {
		for _, o := range offered {
			if o == want {
				return Protocol(want)
			}
		}
	}
	return ""
}

const clientKey = "nochat.client"

func clientOf(s *melody.Session) *client {
	v, _ := s.Get(clientKey)
	c, _ := v.(*client)
	return c
}

func (h *Hub) onConnect(s *melody.Session) {
	c := clientOf(s)
	c.s = s
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.log.Debug("connected", "session", c.id, "proto", c.proto, "remote", c.remote)
	// A session whose upgrade finished just as Close began may have missed
	// Close's round of close frames: Close sets closed before that round.
	if h.closed.Load() || !h.do(func() { h.join(c) }) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down", time.Second)
	}
}

func (h *Hub) onDisconnect(s *melody.Session) {
	c := clientOf(s)
	c.markGone()
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	h.do(func() { h.leave(c) })
	h.log.Debug("disconnected", "session", c.id)
}

// onError runs on melody's goroutines, sometimes under melody's hub lock: it
// only logs and never calls back into melody.
func (h *Hub) onError(s *melody.Session, err error) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway || ce.Code == websocket.CloseNoStatusReceived) {
		return // a normal close is not an error
	}
	if errors.Is(err, melody.ErrSessionClosed) || errors.Is(err, melody.ErrWriteClosed) {
		return
	}
	id := ""
	if c := clientOf(s); c != nil {
		id = c.id
	}
	// gorilla/websocket turns timeouts into its own net.Error, so the
	// operation is only in the text ("write tcp ...: i/o timeout").
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if strings.Contains(err.Error(), "write") {
			// The peer stopped reading long enough to fill the socket.
			if c := clientOf(s); c != nil {
				h.droppedSlow(c)
			}
			h.log.Warn("slow client disconnected", "session", id, "err", err)
		} else {
			h.log.Info("peer timed out", "session", id, "err", err)
		}
		return
	}
	h.log.Info("session error", "session", id, "err", err)
}

func (h *Hub) onBinary(s *melody.Session, _ []byte) {
	c := clientOf(s)
	c.received.Add(1)
	h.refuse(c, ErrBinary, "")
}

func (h *Hub) onMessage(s *melody.Session, b []byte) {
	c := clientOf(s)
	c.received.Add(1)
	if c.proto == Echo {
		h.submitWS(c, DefaultUser, string(b), "")
		return
	}
	if !utf8.Valid(b) {
		// Checked before decoding: JSON would quietly turn bad bytes into
		// U+FFFD and store a message the sender did not write.
		h.refuse(c, ErrInvalidUTF8, "")
		return
	}
	cmd, err := DecodeCommand(b)
	if err != nil {
		h.refuse(c, err, "")
		return
	}
	switch cmd.Type {
	case "send":
		h.submitWS(c, c.name(), cmd.Message, cmd.CID)
	case "nick":
		name, err := cleanName(cmd.User, h.opts.MaxNameLen)
		if err != nil {
			h.refuse(c, err, "")
			return
		}
		c.setName(name)
		h.do(h.presenceChanged)
	case "typing":
		if now := time.Now(); now.Sub(c.lastTyping) >= h.opts.TypingInterval {
			c.lastTyping = now
			h.do(func() { h.typing(c) })
		}
	}
}

// submitWS validates a message from a WebSocket client and queues it for the
// writer. The answer (ack or error) comes from the broadcaster after commit.
func (h *Hub) submitWS(c *client, user, text, cid string) {
	msg, err := cleanMessage(text, h.opts.MaxMessageLen)
	if err != nil {
		h.refuse(c, err, cid)
		return
	}
	err = h.writer.Submit(h.ctx, db.Draft{User: user, Message: msg, CID: cid}, origin{c: c, cid: cid})
	if err != nil {
		h.refuse(c, ErrShutdown, cid)
	}
}

// refuse tells a client why its frame was not accepted: an error frame on
// nochat.v1; on echo-protocol, which has no way to say it, a close frame
// with a code and the reason.
func (h *Hub) refuse(c *client, err error, cid string) {
	var r *Refusal
	errors.As(err, &r)
	h.log.Info("refused", "session", c.id, "code", r.Code, "reason", r.Text)
	if c.proto == V1 {
		c.write(errorFrame(err, cid), h.controlLimit)
		return
	}
	code := websocket.ClosePolicyViolation
	switch r {
	case ErrInvalidUTF8:
		code = websocket.CloseInvalidFramePayloadData
	case ErrBinary:
		code = websocket.CloseUnsupportedData
	case ErrStore:
		code = websocket.CloseInternalServerErr
	case ErrShutdown:
		code = websocket.CloseGoingAway
	}
	if r.Code == "too_long" {
		code = websocket.CloseMessageTooBig
	}
	c.closeWith(code, r.Text, time.Second)
}

// Send stores a message from outside a WebSocket (REST), broadcasts it like
// any other, and returns it once it is committed and handed to every client.
func (h *Hub) Send(ctx context.Context, user, text string) (db.Message, error) {
	user, err := cleanName(user, h.opts.MaxNameLen)
	if err != nil {
		return db.Message{}, err
	}
	msg, err := cleanMessage(text, h.opts.MaxMessageLen)
	if err != nil {
		return db.Message{}, err
	}
	reply := make(chan sendResult, 1)
	if err := h.writer.Submit(ctx, db.Draft{User: user, Message: msg}, origin{reply: reply}); err != nil {
		if errors.Is(err, db.ErrClosed) {
			return db.Message{}, ErrShutdown
		}
		return db.Message{}, err
	}
	select {
	case r := <-reply:
		return r.msg, r.err
	case <-ctx.Done():
		return db.Message{}, ctx.Err()
	}
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

// Online returns the number of open WebSocket sessions.
func (h *Hub) Online() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
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

// do runs f on the broadcaster goroutine, after everything queued before it.
// It reports false once the broadcaster has stopped.
func (h *Hub) do(f func()) bool {
	select {
	case h.events <- f:
		return true
	case <-h.quit:
		return false
	}
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
	h.writer.Close()
	flushed := make(chan struct{})
	h.do(func() { close(flushed) })
	<-flushed
	// Let sessions that fell behind catch up, so every client, even one on
	// echo-protocol that cannot resume, gets every stored message before
	// its close frame. A session still behind when ctx ends resumes with
	// ?after= when it reconnects.
	behind := 0
	h.waitFor(ctx, func() bool {
		n := make(chan int, 1)
		if !h.do(func() { n <- h.behind() }) {
			return true
		}
		behind = <-n
		return behind == 0
	})
	if behind > 0 {
		h.log.Warn("closing with sessions still catching up", "sessions", behind)
	}
	h.cancel() // stop catch-up readers

	h.mu.Lock()
	for c := range h.clients {
		c.closeWith(websocket.CloseGoingAway, "server shutting down", time.Second)
	}
	h.mu.Unlock()

	var err error
	if !h.waitFor(ctx, func() bool { return h.Online() == 0 }) {
		err = fmt.Errorf("close chat: %d sessions still open: %w", h.Online(), ctx.Err())
	}
	h.mu.Lock()
	for c := range h.clients {
		c.s.WebsocketConnection().Close() // cut whatever is left
	}
	h.mu.Unlock()
	h.m.Close()
	h.do(func() { close(h.b.stop) })
	<-h.quit
	return err
}
