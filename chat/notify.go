package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"nochat/db"
)

// Notifications while away (issue 15, item 3). After a message is
// committed and handed out, the broadcaster queues it here without
// waiting; one goroutine (notifyLoop) picks whom to tell, by their level
// in the room and by whether they are away, and hands each a Notification
// for the Pusher (Web Push), which sends it off this path too.

// Notification is what a person away is shown of a message: nothing else
// of it leaves the server.
type Notification struct {
	Title  string `json:"title"` // "<sender> in <room>", or the sender of a direct message
	Body   string `json:"body"`  // the start of the text
	URL    string `json:"url"`   // the message's permalink, /r/<slug>/<id>
	Tag    string `json:"tag"`   // one per message, so a device shows it once
	Urgent bool   `json:"-"`     // a mention or a direct message
}

// Pusher sends notifications to a person's devices. Push must not block:
// it queues, or drops and counts.
type Pusher interface {
	Push(user int64, n Notification)
}

// DefaultPushGrace is how long a person must have had no socket open
// before they are pushed to (Campfire's rule): someone who just closed a
// tab, or whose phone is reconnecting, still sees the message there.
const DefaultPushGrace = 60 * time.Second

// notifyQueue is how many committed messages wait for notifyLoop; past it
// a message notifies no one (counted in pushDropped and logged).
const notifyQueue = 1024

// maxNotifyBody is how many characters of a message a notification shows.
const maxNotifyBody = 120

var errNotifyLevel = &Refusal{"bad_request", "level must be all, mentions or none"}

// SetNotify sets what of room r person id is told of while away: every
// message (db.NotifyAll), mentions and direct messages (db.NotifyMentions),
// or nothing (db.NotifyNone). Their other tabs hear of it in a notify
// frame.
func (h *Hub) SetNotify(ctx context.Context, id Identity, r db.Room, level string) error {
	if id.Guest() {
		return errGuestRooms
	}
	switch level {
	case db.NotifyAll, db.NotifyMentions, db.NotifyNone:
	default:
		return errNotifyLevel
	}
	if err := h.store.SetNotify(ctx, r.ID, id.UserID, level); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return ErrNoRoom
		}
		return fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	// On the broadcaster, which alone reads its registry; sending a frame
	// changes nothing else, as marked (the read frame) does not.
	h.b.send(opRead{func() { h.b.notifyLevel(id.UserID, r.ID, level) }})
	return nil
}

// notifyLevel tells user's pages that their level in room is now level
// (on a cluster, also when it was set through another node).
func (b *broadcaster) notifyLevel(user, room int64, level string) {
	frame := encode("notify", notifyData{Room: room, Level: level})
	for c := range b.conns {
		if c.userID == user && c.proto == V1 {
			b.h.mustSend(c, frame)
		}
	}
}

// notifyData is the notify frame: the person's level in room changed.
type notifyData struct {
	Room  int64  `json:"room"`
	Level string `json:"level"`
}

// awayClock is, for each account, whether it has a socket open and, if
// not, since when: written by the broadcaster as an account's first socket
// opens and its last closes, read by notifyLoop. An account with no entry
// has been away since before the hub started. On a cluster it also knows
// who has a socket open on another node (elsewhere), and since when not.
type awayClock struct {
	mu    sync.Mutex
	since map[int64]time.Time // zero: online now
	// remote is, likewise, the accounts online on another node (zero)
	// and those that left the others lately.
	remote map[int64]time.Time
}

// elsewhere records who is online on the other nodes now: the ones no
// longer there left at now; whoever left longer than grace ago is
// forgotten.
func (a *awayClock) elsewhere(online map[int64]bool, now time.Time, grace time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.remote == nil {
		a.remote = make(map[int64]time.Time)
	}
	for u, t := range a.remote {
		switch {
		case online[u]:
		case t.IsZero():
			a.remote[u] = now
		case now.Sub(t) > grace:
			delete(a.remote, u)
		}
	}
	for u := range online {
		a.remote[u] = time.Time{}
	}
}

func (a *awayClock) online(user int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.since == nil {
		a.since = make(map[int64]time.Time)
	}
	a.since[user] = time.Time{}
}

// offline records that user's last socket closed at now, and forgets
// whoever has been away longer than grace: they are as good as never seen,
// so the map holds only the people online or lately so.
func (a *awayClock) offline(user int64, now time.Time, grace time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.since == nil {
		a.since = make(map[int64]time.Time)
	}
	a.since[user] = now
	if len(a.since)%64 == 0 {
		for u, t := range a.since {
			if !t.IsZero() && now.Sub(t) > grace {
				delete(a.since, u)
			}
		}
	}
}

// away reports whether user has had no socket open, here or on another
// node, for longer than grace.
func (a *awayClock) away(user int64, now time.Time, grace time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	gone := func(t time.Time, seen bool) bool { return !seen || !t.IsZero() && now.Sub(t) > grace }
	t, seen := a.since[user]
	r, there := a.remote[user]
	return gone(t, seen) && gone(r, there)
}

// queueNotice hands a committed message to notifyLoop without waiting:
// called by the broadcaster, whose work must never wait on pushes.
func (h *Hub) queueNotice(m db.Message) {
	if h.opts.Pusher == nil || m.UserID == nil {
		return // no pushes, or a guest's message: nobody to name as its sender
	}
	select {
	case h.notices <- m:
	default:
		if n := h.pushDropped.Add(1); n == 1 || n%100 == 0 {
			h.log.Warn("push queue full: messages notify no one", "dropped", n)
		}
	}
}

// notifyLoop picks, for each queued message, whom to tell, until the hub
// closes.
func (h *Hub) notifyLoop() {
	defer close(h.noticesDone)
	for {
		select {
		case <-h.ctx.Done():
			return
		case m := <-h.notices:
			h.notifyOf(m)
		}
	}
}

// notifyOf tells each member of m's room who wants to hear of it and is
// away: at level all, of every message; at mentions, of mentions of them
// or of everyone, and of every message of a direct room. Never its author.
func (h *Hub) notifyOf(m db.Message) {
	defer h.recordRecovered(placeNotify, "message "+strconv.FormatInt(m.ID, 10))
	r, ok := h.Room(m.Room)
	if !ok {
		return
	}
	members, err := h.store.NotifyLevels(h.ctx, r.ID)
	if err != nil {
		h.log.Error("notify: members", "room", r.ID, "err", err)
		return
	}
	everyone := false
	mentioned := make(map[int64]bool, len(m.Mentions))
	for _, mn := range m.Mentions {
		everyone = everyone || mn.UserID == 0
		mentioned[mn.UserID] = true
	}
	now := time.Now()
	var n *Notification
	for _, who := range members {
		if who.UserID == *m.UserID {
			continue
		}
		urgent := r.Kind == db.KindDirect || everyone || mentioned[who.UserID]
		if who.Notify == db.NotifyNone || who.Notify == db.NotifyMentions && !urgent {
			continue
		}
		if !h.away.away(who.UserID, now, h.opts.PushGrace) {
			continue
		}
		if n == nil {
			n = h.notification(r, m)
		}
		each := *n
		each.Urgent = urgent
		h.opts.Pusher.Push(who.UserID, each)
	}
}

// notification is what a notification of m in r shows.
func (h *Hub) notification(r db.Room, m db.Message) *Notification {
	title := m.User + " in " + r.Name
	if r.Kind == db.KindDirect {
		title = m.User
	}
	body := strings.Join(strings.Fields(m.Message), " ")
	if utf8.RuneCountInString(body) > maxNotifyBody {
		body = string([]rune(body)[:maxNotifyBody-1]) + "…"
	}
	id := strconv.FormatInt(m.ID, 10)
	return &Notification{Title: title, Body: body, URL: "/r/" + r.Slug + "/" + id, Tag: "nochat-" + id}
}
