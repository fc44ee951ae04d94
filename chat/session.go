package chat

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	if id.Guest() && h.opts.Guests == GuestsOff {
		refuse(http.StatusUnauthorized, KindBadInput, placeUpgrade+": guests", errGuestsOff.Text)
		return
	}
	q := r.URL.Query()
	for _, name := range []string{"after", "user"} {
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
	user := DefaultUser
	if v := q.Get("user"); v != "" {
		name, err := cleanName(v, h.opts.MaxNameLen)
		if err != nil {
			refuse(http.StatusBadRequest, KindBadInput, placeUpgrade+": query", "user: "+err.Error())
			return
		}
		user = name
	}
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
	c.userID, c.role, c.session = id.UserID, id.Role, id.Session
	c.controlLimit = h.controlLimit
	if h.opts.MsgRate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(h.opts.MsgRate), h.opts.MsgBurst)
	}
	keys := map[string]any{clientKey: c}
	if handshakeOK(r) {
		// Leave the HTTP server: see upgrade.go.
		if conn, brw, err := http.NewResponseController(w).Hijack(); err == nil {
			hj := &hijacked{conn: conn, brw: brw, header: w.Header()}
			handedOver = true
			go h.upgrade(hj, handshakeRequest(r), keys, ip)
			return
		}
	}
	// A handshake the upgrader will refuse, answered through net/http; or
	// a connection that cannot be taken out of the server.
	if err := h.m.HandleRequestWithKeys(w, r, keys); err != nil {
		h.upgradeFailed(w, err, ip)
	}
}

// upgrade runs a session on a connection taken from the HTTP server, for as
// long as it is open.
func (h *Hub) upgrade(hj *hijacked, r *http.Request, keys map[string]any, ip string) {
	defer h.release(ip)
	defer func() {
		// No net/http below to catch it: a panic here would end the process.
		if v := recover(); v != nil {
			h.recordPanic(v, placeUpgrade, ip)
			hj.conn.Close()
		}
	}()
	if err := h.m.HandleRequestWithKeys(hj, r, keys); err != nil {
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

// admit counts an upgrade against the connection limits, or says why not.
// Addresses are counted by AddressKey.
func (h *Hub) admit(ip string) (int, string) {
	ip = AddressKey(ip)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opts.MaxConns > 0 && h.upgrades >= h.opts.MaxConns {
		return http.StatusServiceUnavailable, fmt.Sprintf("too many connections (the limit is %d): try again later", h.opts.MaxConns)
	}
	if h.opts.MaxConnsPerIP > 0 && h.perIP[ip] >= h.opts.MaxConnsPerIP {
		return http.StatusTooManyRequests, fmt.Sprintf("too many connections from one address (the limit is %d)", h.opts.MaxConnsPerIP)
	}
	h.upgrades++
	h.perIP[ip]++
	return 0, ""
}

func (h *Hub) release(ip string) {
	ip = AddressKey(ip)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.upgrades--
	if h.perIP[ip]--; h.perIP[ip] <= 0 {
		delete(h.perIP, ip)
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

// clientOf finds a session's client. It reads melody's Keys map without
// melody's lock: the map is filled before the session starts and never
// written again (NoChat never calls Set), and this runs for every frame sent,
// where the lock cost a few percent of the CPU of a fan-out.
func clientOf(s *melody.Session) *client {
	c, _ := s.Keys[clientKey].(*client)
	return c
}

func (h *Hub) onConnect(s *melody.Session) {
	c := clientOf(s)
	c.s = s
	// melody keeps the upgrade request for the session's life and never
	// reads it again; what NoChat needs from it is in the client.
	s.Request = nil
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.byID[c.id] = c
	h.peak = max(h.peak, len(h.clients))
	// Under h.mu, so that the series sees the counts in the order they
	// happened: set after the unlock, a late writer could leave an old one.
	h.series.setConnections(len(h.clients))
	h.mu.Unlock()
	h.log.Debug("connected", "session", c.id, "proto", c.proto, "remote", c.remote)
	// A session whose upgrade finished just as Close began may have missed
	// Close's round of close frames: Close sets closed before that round.
	if h.closed.Load() || !h.do(func() { h.join(c) }) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
}

func (h *Hub) onDisconnect(s *melody.Session) {
	c := clientOf(s)
	c.markGone()
	h.mu.Lock()
	delete(h.clients, c)
	delete(h.byID, c.id)
	h.series.setConnections(len(h.clients)) // under h.mu: see onConnect
	h.mu.Unlock()
	h.do(func() { h.leave(c) })
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
		h.droppedSlow(c, "a write waited "+h.opts.SlowTimeout.String()+": the client stopped reading")
	case errors.As(err, &ne) && ne.Timeout():
		h.RecordErrorAt(KindReadWrite, placeSocket+": keepalive", "no answer to pings for "+h.opts.PongWait.String()+": peer gone", c.subject())
	default:
		h.RecordErrorAt(KindReadWrite, placeSocket, err.Error(), c.subject())
	}
}

// recoverSession turns a panic while handling a client's frame into an
// error entry and a close 1011, instead of a session melody never cleans up
// (a recovery further out, around melody's read loop, would skip melody's
// unregister and close).
func (h *Hub) recoverSession(c *client) {
	if v := recover(); v != nil {
		h.recordPanic(v, placeFrame, c.subject())
		c.closeWith(websocket.CloseInternalServerErr, "internal error")
	}
}

// recordPanic files a recovered panic for the admin and logs its stack.
func (h *Hub) recordPanic(v any, place, subject string) {
	h.RecordErrorAt(KindPanic, place, fmt.Sprint(v), subject)
	h.log.Error("panic", "place", place, "subject", subject, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// recordRecovered, deferred on one of the hub's goroutines, turns a panic
// into an error entry, so that the goroutine (or what restarts it) goes on
// instead of the process ending.
func (h *Hub) recordRecovered(place, subject string) {
	if v := recover(); v != nil {
		h.recordPanic(v, place, subject)
	}
}

func (h *Hub) onBinary(s *melody.Session, _ []byte) {
	c := clientOf(s)
	defer h.recoverSession(c)
	c.read()
	h.refuse(c, ErrBinary, "")
}

func (h *Hub) onMessage(s *melody.Session, b []byte) {
	c := clientOf(s)
	defer h.recoverSession(c)
	c.read()
	if c.proto == Echo {
		user := DefaultUser
		if c.userID != 0 {
			user = c.name()
		}
		h.submitWS(c, user, string(b), "")
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
		if c.userID != 0 {
			h.refuse(c, errAccountName, "")
			return
		}
		name, err := cleanName(cmd.User, h.opts.MaxNameLen)
		if err == nil {
			err = h.guestName(h.ctx, name)
		}
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
	if c.userID == 0 {
		if err := h.mayGuestSend(); err != nil {
			h.refuse(c, err, cid)
			return
		}
	}
	if c.limiter != nil && !c.limiter.Allow() {
		h.refuse(c, ErrRateLimited, cid)
		return
	}
	msg, err := cleanMessage(text, h.opts.MaxMessageLen)
	if err != nil {
		h.refuse(c, err, cid)
		return
	}
	err = h.writer.Append(h.ctx, db.Draft{User: user, UserID: c.userID, Message: msg, CID: cid}, origin{c: c, cid: cid})
	if err != nil {
		h.refuse(c, ErrShutdown, cid)
	}
}

// refusalKinds files each refusal under an error kind for the admin.
var refusalKinds = map[string]string{
	"too_long":     KindTooLarge,
	"invalid_utf8": KindInvalidUTF8,
	"rate_limited": KindRateLimited,
}

// refuse tells a client why its frame was not accepted: an error frame on
// nochat.v1; on echo-protocol, which has no way to say it, a close frame
// with a code and the reason.
func (h *Hub) refuse(c *client, err error, cid string) {
	var r *Refusal
	if !errors.As(err, &r) {
		r = &Refusal{"internal", "internal error"}
	}
	switch r {
	case ErrStore, ErrShutdown:
		// Logged once per failed commit, not once per sender.
	default:
		kind, ok := refusalKinds[r.Code]
		if !ok {
			kind = KindBadInput
		}
		h.RecordErrorAt(kind, placeFrame+": "+r.Code, r.Text, c.subject())
	}
	if c.proto == V1 {
		h.mustSend(c, errorFrame(r, cid))
		return
	}
	code := websocket.ClosePolicyViolation
	switch {
	case r == ErrInvalidUTF8:
		code = websocket.CloseInvalidFramePayloadData
	case r == ErrBinary:
		code = websocket.CloseUnsupportedData
	case r == ErrStore:
		code = websocket.CloseInternalServerErr
	case r == ErrShutdown:
		code = websocket.CloseGoingAway
	case r.Code == "too_long": // errTooLong's, made per limit
		code = websocket.CloseMessageTooBig
	}
	c.closeWith(code, r.Text)
}
