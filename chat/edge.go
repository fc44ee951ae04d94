// The HTTP edge of the socket: who may open one (admission: the connection
// limits, the origin, the subprotocol, the query), the upgrade itself (taken
// out of net/http: see below), and melody's session callbacks that hand an
// upgraded connection to the broadcaster and take it back when it closes.

package chat

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
	"golang.org/x/time/rate"

	"nochat/db"
)

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// ClientIP is the address a request comes from: the connection's peer, or
// with trustProxy the last address in X-Forwarded-For, the one the trusted
// proxy itself saw. Proxies append to the header, so the addresses before
// it are whatever the client chose to send.
func ClientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(ip) != nil {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// AddressKey is what the per-address limits count a client address under:
// an IPv4 address as it is, an IPv6 address by its /64 network. A home or
// a phone gets a whole /64 (often a /56 or a /48) and may use any address
// in it, so a limit per IPv6 address would be no limit: one person could
// be 2^64 clients. The address itself is still what the logs show.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// OriginAllowed reports whether a request may act from the page it comes
// from: no Origin header (the tutorial's clients, curl, bots), a page served
// by this same host, or an origin on the allow list ("*" for any). Otherwise
// a page on another site could open sockets in its visitors' names.
func OriginAllowed(r *http.Request, allow []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.ContainsFunc(allow, func(a string) bool {
		return a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin)
	})
}

// ServeWS upgrades r to a guest's WebSocket session: ServeWSAs with no
// account.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request) { h.ServeWSAs(w, r, Identity{}) }

// ServeWSAs upgrades r to a WebSocket session on the subprotocol it offers,
// for whom id names (the caller has checked the session cookie). Refusals
// come before the upgrade, as an HTTP status with a one-line reason: 400
// for no subprotocol NoChat speaks or a bad query (a guest's ?user= that
// is a member's name among them), 401 for a guest when guests are off, 403
// for a foreign origin, 429 or 503 when there are too many connections.
func (h *Hub) ServeWSAs(w http.ResponseWriter, r *http.Request, id Identity) {
	ip := ClientIP(r, h.opts.TrustProxy)
	refuse := func(status int, kind, place, reason string) {
		h.RecordErrorAt(kind, place, reason, ip) // and logs it
		http.Error(w, reason, status)
	}
	proto := pickProtocol(websocket.Subprotocols(r))
	if proto == "" {
		offered := r.Header.Get("Sec-WebSocket-Protocol")
		if offered == "" {
			offered = "none"
		}
		refuse(http.StatusBadRequest, KindRefusedUpgrade, placeUpgrade+": subprotocol", fmt.Sprintf("unsupported WebSocket subprotocol (offered: %.60s): offer nochat.v1 or echo-protocol", offered))
		return
	}
	if !OriginAllowed(r, h.opts.AllowOrigins) {
		refuse(http.StatusForbidden, KindBadOrigin, placeUpgrade+": origin", fmt.Sprintf("origin %.100s may not open a socket here", r.Header.Get("Origin")))
		return
	}
	if id.Role == db.RoleBot && proto != V1 {
		// echo-protocol is the default room's, which a bot may not have.
		refuse(http.StatusBadRequest, KindRefusedUpgrade, placeUpgrade+": subprotocol", "a bot speaks nochat.v1: offer it")
		return
	}
	if id.Guest() && h.opts.Guests == GuestsOff {
		refuse(http.StatusUnauthorized, KindBadInput, placeUpgrade+": guests", errGuestsOff.Text)
		return
	}
	q := r.URL.Query()
	for _, name := range []string{"after", "user", "batch"} {
		if len(q[name]) > 1 {
			refuse(http.StatusBadRequest, KindBadInput, placeUpgrade+": query", name+" is given more than once: give it once")
			return
		}
	}
	after := int64(-1)
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			refuse(http.StatusBadRequest, KindBadInput, placeUpgrade+": query", "after must be a message id (a whole number, 0 or more)")
			return
		}
		after = n
	}
	// ?batch=1: the client reads "messages" frames (queue.go), on nochat.v1.
	batch := false
	switch q.Get("batch") {
	case "", "0":
	case "1":
		batch = proto == V1
	default:
		refuse(http.StatusBadRequest, KindBadInput, placeUpgrade+": query", "batch must be 1 (the client reads messages frames) or 0")
		return
	}
	user := DefaultUser
	if v := q.Get("user"); v != "" {
		name, err := cleanName(v, h.opts.MaxNameLen)
		if err != nil {
			refuse(http.StatusBadRequest, KindBadInput, placeUpgrade+": query", "user: "+err.Error())
			return
		}
		user = name
	}
	namesSeen := h.store.NamesVersion() // before the check: see submitWS
	if !id.Guest() {
		user = id.Name // a member is their account, whatever ?user= says
	} else if err := h.guestName(r.Context(), user); err != nil {
		refuse(http.StatusBadRequest, KindBadInput, placeUpgrade+": query", "user: "+err.Error())
		return
	}
	if h.closed.Load() {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	if !id.Guest() {
		// Its rooms in the directory, where the broadcaster reads them.
		if _, err := h.roomsOf(r.Context(), id.UserID); err != nil {
			refuse(http.StatusServiceUnavailable, KindDatabase, placeUpgrade+": rooms", "your rooms are unavailable right now; try again shortly")
			return
		}
	}
	if status, reason := h.admit(ip); status != 0 {
		refuse(status, KindTooMany, placeUpgrade+": limits", reason)
		return
	}
	// The connection counts against the limits until its session ends, on
	// whichever goroutine that is.
	handedOver := false
	defer func() {
		if !handedOver {
			h.release(ip)
		}
	}()

	c := newClient(proto, user, ip, r.UserAgent(), after)
	c.userID, c.role, c.session, c.tokenHash = id.UserID, id.Role, id.Session, id.TokenHash
	c.namesSeen = namesSeen
	c.streamLimit, c.melodyLimit, c.batch = h.streamLimit, h.melodyLimit, batch
	if batch {
		// Two frames in melody's buffer at most, the one being written and
		// the next: the rest wait in the queue and go as one frame.
		c.melodyLimit = min(c.melodyLimit, 2)
		c.streamLimit = max(c.streamLimit, batchStreamLimit)
	}
	// Its rooms from the start: a frame may come before the broadcaster
	// has the connection (opJoin sets them again, in order with changes).
	set := h.roomsFor(c)
	c.rooms.Store(&set)
	if h.opts.MsgRate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(h.opts.MsgRate), h.opts.MsgBurst)
	}
	if id.Role == db.RoleBot {
		// A bot's limit is its account's, over all its sockets and REST.
		c.limiter = h.bots.limiter(id.UserID)
	}
	if handshakeOK(r) {
		// Leave the HTTP server: see hijacked, below.
		if conn, brw, err := http.NewResponseController(w).Hijack(); err == nil {
			cc := newCoalesced(conn, c.backlog)
			cc.client = c // how clientOf finds it
			c.conn = cc
			hj := &hijacked{conn: cc, brw: brw, header: w.Header()}
			handedOver = true
			go h.upgrade(hj, handshakeRequest(r), ip)
			return
		}
	}
	// A handshake the upgrader will refuse, answered through net/http; or
	// a connection that cannot be taken out of the server.
	if err := h.m.HandleRequestWithKeys(w, r, map[string]any{clientKey: c}); err != nil {
		h.upgradeFailed(w, err, ip)
	}
}

// upgrade runs a session on a connection taken from the HTTP server, for as
// long as it is open.
func (h *Hub) upgrade(hj *hijacked, r *http.Request, ip string) {
	defer h.release(ip)
	defer func() {
		// No net/http below to catch it: a panic here would end the process.
		if v := recover(); v != nil {
			h.recordPanic(v, placeUpgrade, ip)
			hj.conn.Close()
		}
	}()
	if err := h.m.HandleRequest(hj, r); err != nil {
		h.upgradeFailed(hj, err, ip)
		hj.refused()
	}
}

// upgradeFailed logs an upgrade that did not happen. The upgrader has
// answered a bad handshake already (400); melody, closed by a shutdown
// under way, answers nothing, so the client is told here.
func (h *Hub) upgradeFailed(w http.ResponseWriter, err error, ip string) {
	if errors.Is(err, melody.ErrClosed) {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	h.RecordErrorAt(KindRefusedUpgrade, placeUpgrade+": handshake", err.Error(), ip) // and logs it
}

// admission counts connections against the limits, from the moment one is
// admitted (before its upgrade) to the end of its session. It counts
// admissions, not sessions: the registry of sessions is the broadcaster's.
type admission struct {
	mu       sync.Mutex
	perIP    map[string]int // sessions and upgrades under way, per AddressKey
	upgrades int            // sessions and upgrades under way
}

// admit counts an upgrade against the connection limits, or says why not.
// Addresses are counted by AddressKey.
func (h *Hub) admit(ip string) (int, string) {
	ip = AddressKey(ip)
	a := &h.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if h.opts.MaxConns > 0 && a.upgrades >= h.opts.MaxConns {
		return http.StatusServiceUnavailable, fmt.Sprintf("too many connections (the limit is %d): try again later", h.opts.MaxConns)
	}
	if h.opts.MaxConnsPerIP > 0 && a.perIP[ip] >= h.opts.MaxConnsPerIP {
		return http.StatusTooManyRequests, fmt.Sprintf("too many connections from one address (the limit is %d)", h.opts.MaxConnsPerIP)
	}
	if a.perIP == nil {
		a.perIP = make(map[string]int)
	}
	a.upgrades++
	a.perIP[ip]++
	return 0, ""
}

func (h *Hub) release(ip string) {
	ip = AddressKey(ip)
	a := &h.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	a.upgrades--
	if a.perIP[ip]--; a.perIP[ip] <= 0 {
		delete(a.perIP, ip)
	}
}

func pickProtocol(offered []string) Protocol {
	for _, want := range Protocols {
		if slices.Contains(offered, want) {
			return Protocol(want)
		}
	}
	return ""
}

const clientKey = "nochat.client"

// clientOf finds a session's client, for every frame sent. A socket taken
// out of the HTTP server (ServeWS) writes through a coalesced connection
// that carries it: one pointer from the connection melody has just
// written to, where a map's lookup missed the CPU's cache (4% of a
// fan-out's CPU), and no map for each of thousands of idle sockets
// (a third of a KiB each). Any other socket has it in melody's Keys,
// read without melody's lock: the map is filled before the session
// starts and never written again (NoChat never calls Set).
func clientOf(s *melody.Session) *client {
	if cc, ok := s.WebsocketConnection().NetConn().(*coalesced); ok {
		return cc.client
	}
	c, _ := s.Keys[clientKey].(*client)
	return c
}

func (h *Hub) onConnect(s *melody.Session) {
	c := clientOf(s)
	c.s = s
	if c.conn != nil {
		// From here on only frames go through it (the handshake's
		// response went before): see direct.
		c.conn.enableDirect(h.opts.SlowTimeout, func() {
			h.writeStalled(c)
			c.closing.Store(true) // what follows from the close is not news
		})
	}
	h.pings.add(c)
	// melody keeps the upgrade request for the session's life and never
	// reads it again; what NoChat needs from it is in the client.
	s.Request = nil
	h.log.Debug("connected", "session", c.id, "proto", c.proto, "remote", c.remote)
	// A session whose upgrade finished just as Close began may have missed
	// Close's round of close frames: Close sets closed before that round.
	if h.joining != nil {
		h.joining()
	}
	if h.closed.Load() || !h.b.send(opJoin{c}) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		return
	}
	// On a goroutine of its own: the database read would grow the stack of
	// this one, which goes on reading the socket for its whole life.
	go h.recheck(c)
}

func (h *Hub) onDisconnect(s *melody.Session) {
	c := clientOf(s)
	c.markGone()
	h.pings.remove(c)
	h.b.send(opLeave{c})
	h.log.Debug("disconnected", "session", c.id)
}

// onError runs on melody's goroutines, sometimes under melody's hub lock: it
// only records and never calls back into melody.
func (h *Hub) onError(s *melody.Session, err error) {
	// Also called on melody's write goroutine, which nothing above recovers.
	defer h.recordRecovered(placeSocket, "a WebSocket session")
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway || ce.Code == websocket.CloseNoStatusReceived) {
		return // a normal close is not an error
	}
	if errors.Is(err, melody.ErrSessionClosed) || errors.Is(err, melody.ErrWriteClosed) {
		return
	}
	c := clientOf(s)
	if c == nil {
		return
	}
	if c.closing.Load() && !errors.As(err, &ce) {
		return // the server cut the connection itself, having said why
	}
	// gorilla/websocket turns timeouts into its own net.Error, so the
	// operation is only in the text ("write tcp ...: i/o timeout").
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		h.RecordErrorAt(KindTooLarge, placeSocket, fmt.Sprintf("frame over %d bytes: connection closed (1009)", h.opts.MaxFrameBytes), c.subject())
	case errors.As(err, &ne) && ne.Timeout() && strings.Contains(err.Error(), "write"):
		// The peer stopped reading long enough to fill the socket.
		h.writeStalled(c)
	case errors.As(err, &ne) && ne.Timeout():
		h.RecordErrorAt(KindReadWrite, placeSocket+": keepalive", "no answer to pings for "+h.opts.PongWait.String()+": peer gone", c.subject())
	default:
		h.RecordErrorAt(KindReadWrite, placeSocket, err.Error(), c.subject())
	}
}

// writeStalled counts c as dropped for not reading: a write to it waited
// as long as a client may make no progress.
func (h *Hub) writeStalled(c *client) {
	h.droppedSlow(c, "a write waited "+h.opts.SlowTimeout.String()+": the client stopped reading")
}

// A melody session runs its read loop inside the handler that upgraded it,
// for as long as the socket is open. Called from net/http's handler, that
// keeps the whole HTTP connection alive underneath: the connection goroutine's
// deep stack (8 KiB), the server's 4 KiB read and write buffers, the response
// and request. So ServeWS takes the connection out of the server (net/http's
// Hijack), lets the HTTP handler return, and upgrades on a goroutine of its
// own through hijacked, a ResponseWriter whose Hijack hands over that
// connection. gorilla then reads through a small buffer of its own
// (readBufferSize) and melody never sees net/http. Measured at 5,000 idle
// sockets, that took each from 31.7 KiB of RSS to 18.6 KiB (BENCHMARKS.md).

// readBufferSize is each connection's read buffer. Frames longer than it are
// read straight into the message, so it only bounds how many small frames
// one read system call takes in: 1 KiB holds a dozen chat lines.
const readBufferSize = 1024

// handshakeOK reports whether the upgrader will accept r's handshake: the
// checks gorilla/websocket makes before taking the connection. A request
// that fails one is upgraded in place instead, so that gorilla answers it
// through net/http as usual.
func handshakeOK(r *http.Request) bool {
	if r.Method != http.MethodGet || !IsUpgrade(r) {
		return false
	}
	version := false
	for _, v := range r.Header.Values("Sec-Websocket-Version") {
		for t := range strings.SplitSeq(v, ",") {
			version = version || strings.TrimSpace(t) == "13"
		}
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key"))
	return version && err == nil && len(key) == 16
}

// handshakeHeaders are the request headers the upgrade reads. The upgrade
// runs after the HTTP handler has returned, when the server's request is no
// longer the handler's to use, so it gets a copy of these.
var handshakeHeaders = []string{"Connection", "Upgrade", "Sec-Websocket-Version", "Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Origin"}

// handshakeRequest is the part of r the upgrade needs, with no ties to the
// HTTP server's connection or to the handler's context (cancelled when the
// handler returns).
func handshakeRequest(r *http.Request) *http.Request {
	h := make(http.Header, len(handshakeHeaders))
	for _, k := range handshakeHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	return &http.Request{
		Method:     r.Method,
		URL:        r.URL,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     h,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: r.RequestURI,
	}
}

// hijacked is the ResponseWriter melody upgrades through once ServeWS has
// taken the connection from the HTTP server.
type hijacked struct {
	conn   net.Conn
	brw    *bufio.ReadWriter // the server's buffers, until Hijack hands them over
	header http.Header       // sent with the 101 (the security headers)
	status int
	body   bytes.Buffer
	taken  bool
}

func (h *hijacked) Header() http.Header {
	if h.header == nil {
		h.header = make(http.Header)
	}
	return h.header
}

func (h *hijacked) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *hijacked) Write(p []byte) (int, error) {
	if h.taken {
		return 0, http.ErrHijacked
	}
	h.WriteHeader(http.StatusOK)
	return h.body.Write(p)
}

func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h.taken {
		return nil, nil, http.ErrHijacked
	}
	h.taken = true
	// Nothing here is needed once the upgrader has the connection, and this
	// writer lives as long as the session: let the buffers and headers go.
	brw := h.brw
	h.brw, h.header = nil, nil
	return h.conn, brw, nil
}

// refused answers, and closes, a connection whose upgrade was refused before
// the upgrader took it: with the status and text the upgrader wrote, as
// net/http would have sent them. Once taken, the upgrader has closed it.
func (h *hijacked) refused() {
	if h.taken {
		return
	}
	status := h.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	resp := &http.Response{
		StatusCode:    status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h.Header(),
		Body:          io.NopCloser(&h.body),
		ContentLength: int64(h.body.Len()),
		Close:         true,
	}
	var b bytes.Buffer
	resp.Write(&b)
	h.conn.SetWriteDeadline(time.Now().Add(time.Second))
	h.conn.Write(b.Bytes())
	h.conn.Close()
}
