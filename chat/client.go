package chat

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"
	"golang.org/x/time/rate"
)

// client is the hub's view of one WebSocket session.
type client struct {
	// What the broadcaster and melody's sent handler touch for every frame
	// comes first, in 56 bytes: one or two cache lines (the record is not
	// 64-byte aligned) instead of four. With a thousand clients, each
	// message visits every client's record once, and each line costs a miss.
	s     *melody.Session
	proto Protocol
	// queued counts the text frames handed to melody and not yet written to
	// the socket (melody's sent handler counts them down). Melody drops a
	// frame silently when a session's buffer is full; counting lets the hub
	// never hand it one that would not fit, and take the session out of the
	// live set instead.
	queued    atomic.Int32
	owedN     atomic.Int32  // len(owed), read without owedMu
	sent      atomic.Int64  // frames written to the client
	lastWrite atomic.Int64  // Unix nanoseconds of the last frame written
	drained   chan struct{} // capacity 1: a frame was written

	id     string // random 128-bit id (32 hex digits), shown to admins and in hello
	remote string
	agent  string
	since  time.Time
	after  int64 // resume point from ?after=, or -1

	mu   sync.Mutex
	user string

	// The account signed in on the socket's page; 0 and "" for a guest.
	// Set before the session starts, never changed.
	userID  int64
	role    string
	session int64 // the sign-in session (Identity.Session)

	received atomic.Int64  // frames read from the client
	lastRead atomic.Int64  // Unix nanoseconds of the last frame read
	gone     chan struct{} // closed when the session ends
	goneOnce sync.Once
	slow     atomic.Bool // disconnected for not reading
	closing  atomic.Bool // the server has sent a close frame

	limiter *rate.Limiter // messages per second, nil when unlimited

	// owed holds frames that must reach the client (acks, errors, hello,
	// presence, deleted) but found its buffer full. They go out in order as
	// soon as there is room, from melody's sent handler.
	owedMu       sync.Mutex
	owed         [][]byte
	controlLimit int32

	// Owned by the session's reader goroutine.
	lastTyping time.Time
}

func newClient(proto Protocol, user, remote, agent string, after int64) *client {
	c := &client{
		id:      newID(),
		proto:   proto,
		user:    user,
		remote:  remote,
		agent:   agent,
		since:   time.Now(),
		after:   after,
		drained: make(chan struct{}, 1),
		gone:    make(chan struct{}),
	}
	c.lastWrite.Store(c.since.UnixNano())
	c.lastRead.Store(c.since.UnixNano())
	return c
}

// newID is a session id: 128 random bits, so that ids of the sessions open
// at once never collide (32 bits gave a 1% chance at 10,000 connections, and
// an admin's disconnect then missed or hit the wrong session).
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *client) name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

func (c *client) setName(name string) {
	c.mu.Lock()
	c.user = name
	c.mu.Unlock()
}

// write hands a text frame to melody if fewer than limit frames are queued.
// It reports false, writing nothing, when the frame would not fit.
func (c *client) write(b []byte, limit int32) bool {
	if c.queued.Add(1) > limit {
		c.queued.Add(-1)
		return false
	}
	if err := c.s.Write(b); err != nil {
		c.queued.Add(-1)
		return false
	}
	return true
}

// read is called for every frame the client sends.
func (c *client) read() {
	c.received.Add(1)
	c.lastRead.Store(time.Now().UnixNano())
}

// subject names the client in the error log.
func (c *client) subject() string {
	return "session " + c.id + " (" + string(c.proto) + ") from " + c.remote
}

// maxOwed bounds the frames a client may be owed (a few KiB each at most,
// most a hundred bytes). A client that far behind on its acks is not
// reading; one sending at the rate limit never comes near.
const maxOwed = 1024

// send hands the client a frame it must get: at once if there is room,
// else after the frames it is owed already. It reports false only when the
// client is owed too much to keep up.
func (c *client) send(b []byte) bool {
	c.owedMu.Lock()
	defer c.owedMu.Unlock()
	if len(c.owed) == 0 && c.write(b, c.controlLimit) {
		return true
	}
	if len(c.owed) >= maxOwed {
		return false
	}
	c.owed = append(c.owed, b)
	c.owedN.Add(1)
	// Every frame queued may have left between the write above and owedN
	// counting this one, their sent handlers seeing nothing owed: pay now.
	// A frame leaving later sees owedN and pays.
	c.payLocked()
	return true
}

// payOwed writes owed frames while there is room.
func (c *client) payOwed() {
	c.owedMu.Lock()
	defer c.owedMu.Unlock()
	c.payLocked()
}

func (c *client) payLocked() {
	for len(c.owed) > 0 && c.write(c.owed[0], c.controlLimit) {
		c.owed[0] = nil
		c.owed = c.owed[1:]
		c.owedN.Add(-1)
	}
}

// wrote is called by melody's sent handler after a frame reached the socket.
func (c *client) wrote() {
	c.queued.Add(-1)
	c.sent.Add(1)
	c.lastWrite.Store(time.Now().UnixNano())
	if c.owedN.Load() > 0 {
		c.payOwed()
	}
	select {
	case c.drained <- struct{}{}:
	default:
	}
}

// closeGrace is how long a client told to go has to take its close frame.
const closeGrace = time.Second

// closeWith sends a close frame with a code and reason after what is queued,
// and cuts the connection if the client has not gone by closeGrace (a client
// that does not read never takes the close frame).
func (c *client) closeWith(code int, reason string) {
	c.closing.Store(true)
	c.s.CloseWithMsg(melody.FormatCloseMessage(code, reason))
	go func() { // a timer and a Close: nothing here can panic
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-c.gone:
		case <-t.C:
			c.s.WebsocketConnection().Close()
		}
	}()
}

func (c *client) markGone() { c.goneOnce.Do(func() { close(c.gone) }) }
