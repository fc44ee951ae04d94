package chat

import (
	"errors"
	"nochat/db"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// What a connection sends: melody calls these on the session's read
// goroutine, one frame at a time. A frame is decoded, validated, checked
// against the sender's rights and limits, and a message goes to the log;
// a refusal goes back to the sender alone.

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

func (h *Hub) onBinary(s *melody.Session, _ []byte) {
	c := clientOf(s)
	defer h.recoverSession(c)
	c.read()
	if c.closing.Load() {
		return // ended (EndAccount, a ban): nothing more is taken from it
	}
	h.refuse(c, ErrBinary, "")
}

func (h *Hub) onMessage(s *melody.Session, b []byte) {
	c := clientOf(s)
	defer h.recoverSession(c)
	c.read()
	if c.closing.Load() {
		// Closed by the server (EndAccount, a ban, too slow): nothing more
		// it sends is taken, though it may go on sending until the close
		// is through.
		return
	}
	if c.proto == Echo {
		user := DefaultUser
		if c.userID != 0 {
			user = c.name()
		}
		h.submitWS(c, db.DefaultRoom, user, string(b), "", 0)
		return
	}
	if !ValidJSONText(b) {
		// Checked before decoding: JSON would quietly turn bad bytes (and
		// a lone surrogate's escape) into U+FFFD and store a message the
		// sender did not write.
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
		h.submitWS(c, cmd.Room, c.name(), cmd.Message, cmd.CID, cmd.ReplyTo)
	case "nick":
		if c.userID != 0 {
			h.refuse(c, errAccountName, "")
			return
		}
		if !c.lookups.Allow() {
			h.refuse(c, ErrRateLimited, "")
			return
		}
		namesSeen := h.store.NamesVersion()
		name, err := cleanName(cmd.User, h.opts.MaxNameLen)
		if err == nil {
			err = h.guestName(h.ctx, name)
		}
		if err != nil {
			h.refuse(c, err, "")
			return
		}
		c.setName(name)
		c.namesSeen, c.nameTaken = namesSeen, nil
		h.b.send(opNick{})
	case "typing":
		if now := time.Now(); now.Sub(c.lastTyping) >= h.opts.TypingInterval {
			c.lastTyping = now
			h.b.send(opTyping{c, cmd.Room})
		}
	case "read":
		h.markRead(c, cmd.Room, cmd.ID)
	case "edit", "delete", "react":
		h.submitChange(c, ChangeRequest{Kind: db.ChangeKind(cmd.Type), ID: cmd.ID, Text: cmd.Message, On: cmd.On}, cmd.CID)
	}
}

// submitWS validates a message from a WebSocket client and queues it for the
// writer. The answer (ack or error) comes from the broadcaster after commit.
func (h *Hub) submitWS(c *client, room int64, user, text, cid string, replyTo int64) {
	if err := h.mayPost(c, room); err != nil {
		h.refuse(c, err, cid)
		return
	}
	if c.userID == 0 {
		if err := h.mayGuestSend(); err != nil {
			h.refuse(c, err, cid)
			return
		}
	}
	if c.limiter != nil && !c.limiter.Allow() || c.userID == 0 && h.guestSends != nil && !h.guestSends.Allow(c.remote) {
		h.refuse(c, ErrRateLimited, cid)
		return
	}
	if c.userID == 0 {
		// A member may have taken the guest's name since it was chosen:
		// looked up again only then, not for every message, and a name
		// found taken stays refused, unread, until a nick or the next
		// change of names.
		if v := h.store.NamesVersion(); v != c.namesSeen {
			err := h.guestName(h.ctx, user)
			if errors.Is(err, ErrStore) {
				h.refuse(c, err, cid) // the store's trouble: asked again next time
				return
			}
			c.namesSeen, c.nameTaken = v, err
		}
		if c.nameTaken != nil {
			h.refuse(c, c.nameTaken, cid)
			return
		}
	}
	msg, err := cleanMessage(text, h.opts.MaxMessageLen)
	if err != nil {
		h.refuse(c, err, cid)
		return
	}
	d := db.Draft{User: user, UserID: c.userID, Message: msg, CID: cid, Room: room, ReplyTo: replyTo}
	o := origin{c: c, cid: cid}
	if err := h.draftExtras(h.ctx, &d, &o, c.roleNow()); err != nil {
		if errors.Is(err, ErrStore) {
			h.RecordErrorAt(KindDatabase, placeFrame+": send", err.Error(), c.subject())
		}
		h.refuse(c, err, cid)
		return
	}
	if err := h.writer.Append(h.ctx, d, o); err != nil {
		h.refuse(c, socketRefusal(err), cid)
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
	case ErrStore, ErrShutdown, ErrUnavailable:
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
	case r == ErrUnavailable:
		code = websocket.CloseTryAgainLater
	case r.Code == "too_long": // errTooLong's, made per limit
		code = websocket.CloseMessageTooBig
	}
	c.closeWith(code, r.Text)
}

// markRead moves c's account's read marker in room up to id and tells its
// other tabs. A guest has no marker; a room c does not see, or an id not
// yet handed out, is refused.
func (h *Hub) markRead(c *client, room, id int64) {
	switch {
	case c.userID == 0:
		return // a guest's unread count is the page's own
	case !c.sees(room):
		h.refuse(c, ErrNoRoom, "")
		return
	case id > h.b.published.Load():
		h.refuse(c, &Refusal{"bad_request", "read: no message has that id yet"}, "")
		return
	}
	if !c.lookups.Allow() {
		return // the next mark says as much: dropped, not refused
	}
	moved, err := h.store.MarkRead(h.ctx, room, c.userID, id)
	if err != nil {
		h.RecordErrorAt(KindDatabase, placeFrame+": read", err.Error(), c.subject())
		return
	}
	if moved {
		h.b.send(opMarked{from: c, user: c.userID, room: room, id: id})
	}
}
