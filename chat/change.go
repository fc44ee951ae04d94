package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"nochat/db"
)

// Edits, deletions and reactions. Each is checked here against what the
// hub knows (who asks, the message's room and its rules) and then goes to
// the log as a change draft, where the transaction checks it against the
// message as stored (db.applyChange); committed, it reaches the room's
// clients as an edited, deleted or reacted frame with its id in the log,
// and a client resuming after an earlier id is handed it like a message.

// DefaultEditWindow is how long after sending a person may edit a message.
const DefaultEditWindow = 15 * time.Minute

// Refusals of a change.
var (
	ErrNoMessage  = &Refusal{"not_found", "no such message in this room"}
	errNotAuthor  = &Refusal{"forbidden", "you may change only your own messages"}
	errNotDeleter = &Refusal{"forbidden", "you may delete only your own messages, or any in a room you manage"}
	errGuestEdit  = &Refusal{"sign_in_required", "sign in to edit, delete or react to messages"}
	errBadEmoji   = &Refusal{"bad_emoji", "a reaction is one emoji"}
	errTooMany    = &Refusal{"forbidden", "a message has at most " + strconv.Itoa(db.MaxReactionKinds) + " kinds of reaction"}
	errSameRoom   = &Refusal{"bad_request", "the message is not in that room"}
)

func (h *Hub) errEditWindow() *Refusal {
	return &Refusal{"too_late", "a message can be edited for " + fmtDuration(h.opts.EditWindow) + " after it is sent"}
}

// fmtDuration is d as people say it: "15 minutes", "1 hour", "90 seconds".
func fmtDuration(d time.Duration) string {
	n, unit := int64(d/time.Second), "second"
	switch {
	case d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.FormatInt(n, 10) + " " + unit
}

// ChangeRequest is a change someone asks for: to message ID (in Room, when
// the caller knows it: a REST path names it), with the new text or the
// emoji in Text, and for a reaction On (nil: toggle).
type ChangeRequest struct {
	Kind db.ChangeKind
	ID   int64
	Room int64 // 0: whichever room the message is in
	Text string
	On   *bool
}

// who is whoever asks for a change: an account, its role, what it sees.
type who struct {
	userID int64
	role   string
	sees   func(room int64) bool
}

// draftChange checks req for w and returns the draft for the log.
func (h *Hub) draftChange(ctx context.Context, w who, req ChangeRequest) (db.Draft, error) {
	if w.userID == 0 {
		return db.Draft{}, errGuestEdit
	}
	if req.ID <= 0 {
		return db.Draft{}, ErrNoMessage
	}
	m, err := h.store.Get(ctx, req.ID)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return db.Draft{}, ErrNoMessage
	case err != nil:
		return db.Draft{}, fmt.Errorf("%w (%w)", ErrStore, err)
	case !w.sees(m.Room), req.Room != 0 && req.Room != m.Room:
		// Not a word about a message of a room one cannot see.
		return db.Draft{}, ErrNoMessage
	}
	r, ok := h.Room(m.Room)
	if !ok {
		return db.Draft{}, ErrNoMessage
	}
	if r.IsArchived() {
		return db.Draft{}, ErrArchived
	}
	d := db.Draft{Change: req.Kind, Target: m.ID, Room: m.Room, UserID: w.userID}
	mine := m.UserID != nil && *m.UserID == w.userID
	switch req.Kind {
	case db.Edit:
		if !mine {
			return db.Draft{}, errNotAuthor
		}
		if d.Message, err = cleanMessage(req.Text, h.opts.MaxMessageLen); err != nil {
			return db.Draft{}, err
		}
		d.EditSince = time.Now().Add(-h.opts.EditWindow).UnixMilli()
		if m.Timestamp < d.EditSince {
			return db.Draft{}, h.errEditWindow()
		}
		if d.Mentions, err = h.mentionsIn(ctx, r, w.userID, w.role, d.Message); err != nil {
			return db.Draft{}, fmt.Errorf("%w (%w)", ErrStore, err)
		}
		MessageHTML(d.Message, d.Mentions) // off the broadcaster, as a send is
	case db.Delete:
		d.Moderator = w.role == db.RoleAdmin || r.Kind != db.KindDirect && r.CreatedBy == w.userID
		if !mine && !d.Moderator {
			return db.Draft{}, errNotDeleter
		}
	case db.React:
		if !ValidEmoji(req.Text) {
			return db.Draft{}, errBadEmoji
		}
		d.Message, d.On = req.Text, req.On
	default:
		return db.Draft{}, &Refusal{"bad_request", "unknown change"}
	}
	return d, nil
}

// refusalOf is the refusal for a change the log refused.
func (h *Hub) refusalOf(err error) error {
	switch {
	case errors.Is(err, db.ErrNoMessage):
		return ErrNoMessage
	case errors.Is(err, db.ErrNotAuthor):
		return errNotAuthor
	case errors.Is(err, db.ErrEditWindow):
		return h.errEditWindow()
	case errors.Is(err, db.ErrTooManyReactions):
		return errTooMany
	case errors.Is(err, db.ErrOverQuota):
		return ErrOverQuota
	}
	return err
}

// Change makes a change for id (REST): it returns the message as it is
// after it, once the change is committed and handed out. A change that
// changes nothing (the same text, a reaction already there) succeeds with
// the message as it is.
func (h *Hub) Change(ctx context.Context, id Identity, req ChangeRequest) (db.Message, error) {
	sees := func(room int64) bool {
		r, ok := h.Room(room)
		if !ok {
			return false
		}
		a, err := h.AccessTo(ctx, id, r)
		return err == nil && a.See
	}
	d, err := h.draftChange(ctx, who{userID: id.UserID, role: id.Role, sees: sees}, req)
	if err != nil {
		return db.Message{}, err
	}
	if _, err := h.commit(ctx, d, origin{}); err != nil || req.Kind == db.Delete {
		return db.Message{}, err
	}
	// As it is now, with its reactions: also when the change changed
	// nothing.
	m, err := h.store.Get(ctx, req.ID)
	if errors.Is(err, db.ErrNotFound) {
		return db.Message{}, ErrNoMessage // deleted since
	}
	return m, err
}

// Delete removes a message for the admin dashboard, as a deletion in the
// log: the room's clients are told, and one that resumes later too. It
// reports db.ErrNotFound for an unknown id.
func (h *Hub) Delete(ctx context.Context, id int64) error {
	m, err := h.store.Get(ctx, id)
	if err != nil {
		return err
	}
	st, err := h.commit(ctx, db.Draft{Change: db.Delete, Target: id, Room: m.Room, Moderator: true}, origin{})
	if errors.Is(st.Refused, db.ErrNoMessage) {
		return fmt.Errorf("delete message %d: %w", id, db.ErrNotFound)
	}
	return err
}

// submitChange is a change from a nochat.v1 connection: refused at once
// if it cannot be made, else answered after the commit (an ack with the
// change's id when the frame had a cid; the change itself reaches c with
// the room's other connections).
func (h *Hub) submitChange(c *client, req ChangeRequest, cid string) {
	if c.limiter != nil && !c.limiter.Allow() {
		h.refuse(c, ErrRateLimited, cid)
		return
	}
	if cid != "" && c.userID != 0 && h.sentBefore(c, req, cid) {
		return
	}
	d, err := h.draftChange(h.ctx, who{userID: c.userID, role: c.roleNow(), sees: c.sees}, req)
	if err != nil {
		if errors.Is(err, ErrStore) {
			h.RecordErrorAt(KindDatabase, placeFrame+": "+string(req.Kind), err.Error(), c.subject())
		}
		h.refuse(c, err, cid)
		return
	}
	// Stored under its cid, which sentBefore finds when it comes again.
	d.CID = cid
	if err := h.writer.Append(h.ctx, d, origin{c: c, cid: cid}); err != nil {
		h.refuse(c, socketRefusal(err), cid)
	}
}

// sentBefore answers a change frame that c's account sent before under
// cid (a reconnect lost the first one's ack, and the client sent it
// again) as the first one was answered: acked with the change it made, or
// refused as cid_reused when the cid named another change. It looks
// before the change is drafted: by now the message may be gone, or too
// old to edit, which would refuse the copy of a change that was made. It
// reports whether it answered; a copy that comes while the first is
// still on its way is the writer's to find (db.Store.applyChange).
func (h *Hub) sentBefore(c *client, req ChangeRequest, cid string) bool {
	d := db.Draft{Change: req.Kind, Target: req.ID, Message: req.Text, On: req.On, UserID: c.userID, CID: cid}
	if req.Kind == db.Edit {
		text, err := cleanMessage(req.Text, h.opts.MaxMessageLen)
		if err != nil {
			return false // never stored so: refused as a new change
		}
		d.Message = text
	}
	st, named, err := h.store.ChangeUnderCID(h.ctx, d)
	switch {
	case err != nil, !named:
		return false // the store's trouble is found again when drafting
	case st.Reused:
		h.refuse(c, ErrCIDReused, cid)
	default:
		h.mustSend(c, encode("ack", ackData{CID: cid, ID: st.Change.ID}))
	}
	return true
}

// ValidEmoji reports whether s is one emoji as a reaction: one pictograph,
// or several joined into one (a family), with their modifiers (skin tones,
// variation selectors, keycaps, flags), at most 32 bytes. Letters, digits
// alone, spaces, punctuation and a run of emoji are refused, so a reaction
// cannot carry a message.
func ValidEmoji(s string) bool {
	if s == "" || len(s) > 32 || !utf8.ValidString(s) {
		return false
	}
	bases := 0 // pictographs that start an emoji: not joined to the one before
	rs := []rune(s)
	for i, r := range rs {
		joined := i > 0 && rs[i-1] == 0x200D
		switch {
		case r == 0x200D || r == 0xFE0F || r == 0xFE0E || r == 0x20E3:
			// joiner, variation selectors, keycap
		case r >= 0x1F3FB && r <= 0x1F3FF, r >= 0xE0020 && r <= 0xE007F:
			// skin tones, tag characters (subdivision flags)
		case r >= 0x1F1E6 && r <= 0x1F1FF:
			// A flag is two regional indicators.
			if i == 0 || !(rs[i-1] >= 0x1F1E6 && rs[i-1] <= 0x1F1FF) || i >= 2 && rs[i-2] >= 0x1F1E6 && rs[i-2] <= 0x1F1FF {
				bases++
			}
		case (r >= '0' && r <= '9' || r == '#' || r == '*') && i+1 < len(rs) && (rs[i+1] == 0xFE0F || rs[i+1] == 0x20E3):
			bases++ // a keycap's base
		case r == utf8.RuneError || r == 0xFFFC:
			return false // a replacement, an object placeholder: not a picture
		case unicode.Is(unicode.So, r) || r > 0x7F && unicode.Is(unicode.Sk, r) || r == 0x203C || r == 0x2049:
			if !joined {
				bases++
			}
		default:
			return false
		}
	}
	return bases == 1
}
