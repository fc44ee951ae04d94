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

// client is one WebSocket connection: who it is, what it has read, and
// (embedded, so its fields come first) its outgoing queue (queue.go).
type client struct {
	queue

	id     string // random 128-bit id (32 hex digits), shown to admins and in hello
	remote string
	agent  string
	since  time.Time
	after  int64 // resume point from ?after=, or -1

	mu   sync.Mutex
	user string
	// role is the account's role, "" for a guest: an admin may change it
	// while the socket is open (Hub.SetRole); roleSet counts the changes.
	role    string
	roleSet int

	// The account signed in on the socket's page; 0 for a guest. Set
	// before the session starts, never changed.
	userID    int64
	session   int64  // the sign-in session (Identity.Session)
	tokenHash []byte // a bot's token (Identity.TokenHash)

	received atomic.Int64  // frames read from the client
	lastRead atomic.Int64  // Unix nanoseconds of the last frame read
	gone     chan struct{} // closed when the session ends
	goneOnce sync.Once
	slow     atomic.Bool // disconnected for not reading
	closing  atomic.Bool // the server has sent a close frame

	limiter *rate.Limiter // messages per second, nil when unlimited
	// lookups limits the frames besides messages that reach the database:
	// a signed-in page's read marks (a few a second at most while messages
	// arrive), a guest's name changes (each looked up among the members').
	lookups *rate.Limiter

	// rooms is the rooms the connection sees, replaced (never changed) by
	// the broadcaster when a membership changes; read anywhere.
	rooms atomic.Pointer[roomSet]

	// Owned by the session's reader goroutine.
	lastTyping time.Time
	// namesSeen is the store's NamesVersion when a guest's name was last
	// looked up among the members'; nameTaken the refusal then, if a
	// member had it.
	namesSeen int64
	nameTaken error

	// Where the hub's keepalive holds it; pingPos is -1 when it does not.
	pingSlot, pingPos int
}

func newClient(proto Protocol, user, remote, agent string, after int64) *client {
	c := &client{
		queue:   queue{proto: proto, drained: make(chan struct{}, 1)},
		id:      newID(),
		user:    user,
		remote:  remote,
		agent:   agent,
		since:   time.Now(),
		after:   after,
		gone:    make(chan struct{}),
		lookups: rate.NewLimiter(lookupRate, lookupBurst),

		pingPos: -1,
	}
	c.lastWrite.Store(c.since.UnixNano())
	c.lastRead.Store(c.since.UnixNano())
	return c
}

// newID is a session id: 128 random bits, so that ids of the sessions open
// at once never collide (32 bits gave a 1% chance at 10,000 connections, and
// an admin's disconnect then missed or hit the wrong session).
// A connection's lookups: a burst of lookupBurst, then lookupRate a
// second. The burst leaves room for a page that comes back online and
// sends what it queued, a nick before each line sent under another name.
const (
	lookupRate  = 2
	lookupBurst = 10
)

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sees reports whether the connection receives room's messages.
func (c *client) sees(room int64) bool {
	set := c.rooms.Load()
	return set != nil && set.has(room)
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

// roleNow is the account's role as it is now, "" for a guest.
func (c *client) roleNow() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role
}

func (c *client) setRole(role string) {
	c.mu.Lock()
	c.role = role
	c.roleSet++
	c.mu.Unlock()
}

// roleChanges is how many times the role was set: see setRoleUnlessSince.
func (c *client) roleChanges() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roleSet
}

// setRoleUnlessSince sets role, read from the store after roleChanges
// said n, unless SetRole has set a newer one since.
func (c *client) setRoleUnlessSince(n int, role string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roleSet == n {
		c.role = role
	}
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

// closeGrace is how long a client told to go has to take its close frame.
const closeGrace = time.Second

// closeWith sends a close frame with a code and reason after what is queued,
// and cuts the connection if the client has not gone by closeGrace (a client
// that does not read never takes the close frame).
func (c *client) closeWith(code int, reason string) {
	c.closing.Store(true)
	c.closeAfter(melody.FormatCloseMessage(code, reason))
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
