package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// errNameEmpty refuses an account without a name.
var errNameEmpty = &Refusal{"bad_name", "a name is needed"}

// errNameReserved refuses an account the name every nameless guest has.
var errNameReserved = &Refusal{"bad_name", "that name is what guests without a name are called: pick another"}

// AccountName cleans a name for an account as guests' names are cleaned,
// and returns it with its comparison key (NameKey). An account needs a
// name (a guest without one is DefaultUser), and may not have
// DefaultUser's, which would make every nameless guest look like it.
func (h *Hub) AccountName(name string) (display, key string, err error) {
	return CleanAccountName(name, h.opts.MaxNameLen)
}

// MaxNameLen is how many characters an account's name may have
// (Options.MaxNameLen).
func (h *Hub) MaxNameLen() int { return h.opts.MaxNameLen }

// DefaultMaxNameLen is how many characters a name may have by default.
const DefaultMaxNameLen = 32

// CleanAccountName is AccountName for names of at most maxLen characters,
// without a hub: for `nochat bot create`, which names a bot as people are
// named.
func CleanAccountName(name string, maxLen int) (display, key string, err error) {
	if strings.TrimSpace(name) == "" {
		return "", "", errNameEmpty
	}
	if display, err = cleanName(name, maxLen); err != nil {
		return "", "", err
	}
	if key, err = NameKey(display); err != nil {
		return "", "", err
	}
	if guest, err := NameKey(DefaultUser); err == nil && key == guest {
		return "", "", errNameReserved
	}
	return display, key, nil
}

// Identity is whom a connection or a send speaks for: an account, or a
// guest (UserID 0).
type Identity struct {
	UserID int64  // the account; 0 for a guest
	Name   string // the account's name; "" for a guest
	Role   string // the account's role (db.RoleAdmin, ...); "" for a guest
	// Session is the sign-in session the request came with, so that
	// ending it can close its sockets (EndSessions); 0 for none.
	Session int64
	// SessionEnds is when Session runs out (a page kept for offline use
	// is not shown past it); zero for none.
	SessionEnds time.Time
	// TokenHash is the SHA-256 of a bot's token the request came with, so
	// that a socket opened as the token is replaced is closed too; nil for
	// none.
	TokenHash []byte
}

// Guest reports whether the identity has no account.
func (id Identity) Guest() bool { return id.UserID == 0 }

// Guests is what people without an account may do.
type Guests string

// The guest policies.
const (
	// GuestsOn lets guests read and send: the tutorial's clients keep
	// working unchanged.
	GuestsOn Guests = "on"
	// GuestsRead lets guests read (the page, its socket, REST reads) but
	// not send.
	GuestsRead Guests = "read"
	// GuestsOff keeps guests out: no socket, no REST reads or sends; the
	// page asks them to sign in.
	GuestsOff Guests = "off"
)

// ParseGuests reads a guest policy: on, read or off.
func ParseGuests(s string) (Guests, error) {
	switch g := Guests(strings.ToLower(strings.TrimSpace(s))); g {
	case GuestsOn, GuestsRead, GuestsOff:
		return g, nil
	}
	return "", errors.New("want on, read or off")
}

// ErrSignInRequired refuses a guest's send (or, with guests off, a
// guest's read): only people signed in to an account may.
var ErrSignInRequired = &Refusal{"sign_in_required", "sign in to send messages here: guests may only read"}

// errGuestsOff is ErrSignInRequired where guests may not even read.
var errGuestsOff = &Refusal{"sign_in_required", "sign in to use this chat: it is for its members only"}

// errMembersName refuses a guest a member's name.
var errMembersName = &Refusal{"bad_name", "that name belongs to a member: pick another, or sign in as them"}

// errAccountName refuses a member a name other than their account's.
var errAccountName = &Refusal{"bad_name", "signed in, you write under your account's name"}

// GuestsMayRead reports whether people without an account may read.
func (h *Hub) GuestsMayRead() bool { return h.opts.Guests != GuestsOff }

// GuestsMayPost reports whether people without an account may post (in
// the lobby, and rooms opened to guests).
func (h *Hub) GuestsMayPost() bool { return h.opts.Guests == GuestsOn }

// guestName checks that a guest's cleaned name is no member's, by the
// same comparison account names are unique under. A name that has no key
// (NameKey refuses it) cannot be a member's.
func (h *Hub) guestName(ctx context.Context, name string) error {
	key, err := NameKey(name)
	if err != nil {
		return nil
	}
	switch _, err := h.store.AccountByNameKey(ctx, key); {
	case err == nil:
		return errMembersName
	case errors.Is(err, db.ErrNotFound):
		return nil
	default:
		return fmt.Errorf("%w (%w)", ErrStore, err)
	}
}

// mayGuestSend says whether a guest may send now, as a refusal.
func (h *Hub) mayGuestSend() error {
	switch h.opts.Guests {
	case GuestsRead:
		return ErrSignInRequired
	case GuestsOff:
		return errGuestsOff
	}
	return nil
}

// closeSignedOut is the close frame of a socket whose sign-in ended.
const closeSignedOut = "signed out: sign in again to go on"

// EndSessions closes, at once, every socket opened under one of the given
// sign-in sessions (Identity.Session): a person who signs a device out
// expects its open page to stop too. It reports how many it closed.
func (h *Hub) EndSessions(sessions ...int64) int {
	if len(sessions) == 0 {
		return 0
	}
	n := 0
	h.b.read(func() { n = h.b.endSessions(sessions) })
	return n
}

// endSessions is EndSessions on the broadcaster. A socket closing already
// (a session ended through this node is closed by its handler, then again
// as the log's command) is left to close.
func (b *broadcaster) endSessions(sessions []int64) int {
	n := 0
	for c := range b.conns {
		if c.session != 0 && slices.Contains(sessions, c.session) && !c.closing.Load() {
			c.closeWith(websocket.ClosePolicyViolation, closeSignedOut)
			n++
		}
	}
	return n
}

// recheck closes c if what let it in ended while it was upgrading: its
// sign-in session, its bot token, or its account; and gives it its
// account's role, if an admin changed it meanwhile. ServeWS checked them,
// but ending them (EndSessions, EndAccount) or a new role (SetRole)
// reaches only the sockets the broadcaster has, and c was not one of them
// before its join. The handlers change the store first and the sockets
// after: so once c has joined, either the handler found it or the store
// shows the change here.
func (h *Hub) recheck(c *client) {
	defer h.recoverSession(c)
	if c.userID == 0 || !h.b.read(func() {}) { // after opJoin: c is in conns
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if c.session != 0 {
		if ok, err := h.store.SessionExists(ctx, c.session); err == nil && !ok {
			c.closeWith(websocket.ClosePolicyViolation, closeSignedOut)
			return
		}
	}
	if c.tokenHash != nil {
		if _, err := h.store.BotByToken(ctx, c.tokenHash); errors.Is(err, db.ErrNotFound) {
			c.closeWith(CloseAccountEnded, CloseBotRevoked)
			// As the token watcher says it (handlers.WatchBotTokens), which
			// then finds this socket closed already.
			h.log.Info("closed the sockets of a bot whose token changed", "bot", c.userID, "sockets", 1)
			return
		}
	}
	roles := c.roleChanges() // before the read: a SetRole after it wins
	a, err := h.store.AccountByID(ctx, c.userID)
	switch {
	case err != nil:
	case a.Deactivated:
		reason := closeAccountInactive
		if a.Role == db.RoleBot {
			reason = CloseBotRevoked
		}
		c.closeWith(CloseAccountEnded, reason)
	default:
		c.setRoleUnlessSince(roles, a.Role) // changed while it was upgrading?
	}
}

// closeAccountInactive is the close frame of a socket whose account was
// deactivated or banned as it opened.
const closeAccountInactive = "your account is no longer active"

// CloseAccountEnded is the close code of a socket whose account an admin
// deactivated or banned (a private-use code, RFC 6455 7.4.2): the page
// shows the close reason and does not reconnect, since it would be
// refused.
const CloseAccountEnded = 4003

// The close reasons of the sockets of an account an admin deactivated, or
// banned.
const (
	CloseDeactivated = "your account was deactivated by an admin"
	CloseBanned      = "your account was banned by an admin"
	// CloseAddressBanned closes the pages open from an address an admin
	// banned on its own (a guest's), with no account banned.
	CloseAddressBanned = "this address was banned from the chat by an admin"
)

// SetRole gives the sockets signed in to account id the role an admin
// has just stored for it: what they may do (post where only admins post,
// delete others' messages, @everyone) follows at once, from their next
// frame, without closing them.
func (h *Hub) SetRole(id int64, role string) {
	if id == 0 {
		return
	}
	h.b.read(func() { h.b.setRole(id, role) })
}

// setRole is SetRole on the broadcaster. The account's nochat.v1 pages
// hear of it (a role frame), so that what they offer follows: an admin's
// delete buttons and dashboard link.
func (b *broadcaster) setRole(id int64, role string) {
	var frame []byte
	for c := range b.conns {
		if c.userID != id {
			continue
		}
		c.setRole(role)
		if c.proto == V1 {
			if frame == nil {
				frame = encode("role", roleData{Role: role})
			}
			b.h.mustSend(c, frame)
		}
	}
}

// roleData is the role frame: this account's role is now Role.
type roleData struct {
	Role string `json:"role"`
}

// EndAccount closes, at once, every socket signed in to an account, with
// CloseAccountEnded and reason (at most 123 bytes, a close frame's room).
// It reports how many it closed.
func (h *Hub) EndAccount(userID int64, reason string) int {
	if userID == 0 {
		return 0
	}
	n := 0
	h.b.read(func() { n = h.b.endAccount(userID, reason) })
	return n
}

// endAccount is EndAccount on the broadcaster; a socket closing already
// (see endSessions) is left to close.
func (b *broadcaster) endAccount(userID int64, reason string) int {
	n := 0
	for c := range b.conns {
		if c.userID == userID && !c.closing.Load() {
			c.closeWith(CloseAccountEnded, reason)
			n++
		}
	}
	return n
}

// AddressesOf returns the addresses (by AddressKey) an account's open
// sockets come from, each once.
func (h *Hub) AddressesOf(userID int64) []string {
	if userID == 0 {
		return nil
	}
	var out []string
	h.b.read(func() {
		for c := range h.b.conns {
			if c.userID == userID {
				if k := AddressKey(c.remote); !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
	})
	return out
}

// CloseAddresses closes, at once, every socket from one of the addresses
// (by AddressKey), with CloseAccountEnded and reason: a ban's, for the
// banned person's pages that are open as a guest's. It reports how many
// it closed.
func (h *Hub) CloseAddresses(addresses []string, reason string) int {
	if len(addresses) == 0 {
		return 0
	}
	n := 0
	h.b.read(func() { n = h.b.closeAddresses(addresses, reason) })
	return n
}

// closeAddresses is CloseAddresses on the broadcaster; a socket closing
// already (see endSessions) is left to close.
func (b *broadcaster) closeAddresses(addresses []string, reason string) int {
	n := 0
	for c := range b.conns {
		if slices.Contains(addresses, AddressKey(c.remote)) && !c.closing.Load() {
			c.closeWith(CloseAccountEnded, reason)
			n++
		}
	}
	return n
}

// Rename tells the room that account id is now called name (the caller
// has stored it): each of the account's open sessions speaks under the new
// name from now on, every nochat.v1 session gets a person frame
// {"user_id", "user"} so its page can show the new name wherever the
// account appears, and presence goes out again. The messages kept in
// memory for replay are re-encoded, so a client that resumes gets the new
// name too, as it does from the database. echo-protocol clients, which
// see no names, get nothing.
func (h *Hub) Rename(id int64, name string) {
	if id == 0 {
		return
	}
	h.b.sendWait(opRename{id: id, name: name})
}
