package chat

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// The broadcaster keeps the newest encoded messages in memory, so that a
// client a little behind (a burst overran its buffer, or it resumes after a
// short drop) catches up without a database read. Bounded by count and by
// bytes: a few thousand ordinary messages, never more than recentMaxBytes.
const (
	recentSize     = 4096
	recentMaxBytes = 2 << 20
)

// broadcaster is the state of the one goroutine that sends messages to
// clients. Because one goroutine does every send, every client receives
// messages in id order; because joining the live set happens on the same
// goroutine, a client that catches up (after a resume or after falling
// behind) joins exactly after the last message it was given: no gap, no
// duplicate.
type broadcaster struct {
	lastID  int64                // newest message handed out
	members map[*client]struct{} // every joined session
	live    map[*client]struct{} // sessions receiving messages as they commit

	// recent holds the newest messages, oldest first; every message with an
	// id above floor is in it. Catch-up readers read it under Hub.recentMu;
	// only the broadcaster changes it, under the same lock.
	recent      []*frames
	recentBytes int // bytes the frames in recent hold
	floor       int64

	presenceDirty     bool // presence changed since it was last sent
	presenceScheduled bool // a presence send is due

	// accounts holds, for each account with a joined session, what is
	// kept per person rather than per connection; an entry goes with its
	// last session, so the map is bounded by members.
	accounts map[int64]*person

	stop chan struct{}
}

func (b *broadcaster) init(latestID int64) {
	b.lastID = latestID
	b.floor = latestID
	b.members = make(map[*client]struct{})
	b.live = make(map[*client]struct{})
	b.accounts = make(map[int64]*person)
	b.recent = make([]*frames, 0, recentSize)
	b.stop = make(chan struct{})
}

func (b *broadcaster) remember(f *frames) {
	b.recent = append(b.recent, f)
	b.recentBytes += f.size()
	drop := 0
	for len(b.recent)-drop > recentSize || (b.recentBytes > recentMaxBytes && len(b.recent)-drop > 1) {
		b.floor = b.recent[drop].id
		b.recentBytes -= b.recent[drop].size()
		b.recent[drop] = nil
		drop++
	}
	// Reslicing moves the start forward; append copies the live part to a
	// new array when the old one is used up: amortised O(1) a message.
	b.recent = b.recent[drop:]
}

// since returns the remembered messages with ids above after, and whether
// they are all the messages there are above after.
func (b *broadcaster) since(after int64) ([]*frames, bool) {
	if after < b.floor {
		return nil, false
	}
	return b.recent[b.index(after+1):], true
}

// index is where in recent the message with id is, or would be.
func (b *broadcaster) index(id int64) int {
	i, _ := slices.BinarySearchFunc(b.recent, id, func(f *frames, want int64) int { return cmp.Compare(f.id, want) })
	return i
}

// drop forgets the remembered message with the given id, if it is there.
func (b *broadcaster) drop(id int64) {
	if i := b.index(id); i < len(b.recent) && b.recent[i].id == id {
		b.recentBytes -= b.recent[i].size()
		b.recent = slices.Delete(b.recent, i, i+1)
	}
}

// dropBelow forgets the remembered messages with ids under below. floor
// stays: every message above it that the store still holds is remembered.
func (b *broadcaster) dropBelow(below int64) {
	i := b.index(below)
	for j := range b.recent[:i] {
		b.recentBytes -= b.recent[j].size()
		b.recent[j] = nil
	}
	b.recent = b.recent[i:]
}

// fetch returns up to n messages after the given id, from memory when they
// are recent, else from the database.
func (h *Hub) fetch(after int64, n int) ([]*frames, error) {
	h.recentMu.RLock()
	recent, ok := h.b.since(after)
	if ok {
		recent = slices.Clone(recent[:min(n, len(recent))])
	}
	h.recentMu.RUnlock()
	if ok {
		return recent, nil
	}
	msgs, err := h.store.After(h.ctx, after, n)
	if err != nil {
		return nil, err
	}
	out := make([]*frames, len(msgs))
	for i, m := range msgs {
		out[i] = encodeMessage(m)
	}
	return out, nil
}

func (h *Hub) broadcast() {
	defer close(h.quit)
	for {
		select {
		case f := <-h.events:
			h.runEvent(f)
		case <-h.b.stop:
			return
		}
	}
}

// runEvent runs one of the broadcaster's operations. A panic in one is an
// error entry, and the broadcaster goes on with the next: stopped, it would
// leave every sender and every client waiting forever.
func (h *Hub) runEvent(f func()) {
	defer h.recordRecovered(placeBroadcaster, "the chat room")
	f()
}

// deliver answers each sender of a committed batch and hands its messages to
// the live clients, in id order.
func (h *Hub) deliver(c db.Commit[origin]) {
	h.opts.Observer.Committed(len(c.Items), c.Took, c.Err)
	if c.Err != nil {
		kind := KindDatabase
		if errors.Is(c.Err, db.ErrPanic) {
			kind = KindPanic
		}
		h.RecordErrorAt(kind, placeWriter, "store messages: "+c.Err.Error(), fmt.Sprintf("%d messages", len(c.Items)))
		for _, it := range c.Items {
			h.answer(it, c.Err)
		}
		return
	}
	began := time.Now()
	fresh := 0
	for _, it := range c.Items {
		// A WebSocket sender hears first: its ack, carrying the id, comes
		// before the message itself, so a client can turn its pending line
		// into the stored message by cid and then recognise the message by
		// id. A REST sender is answered below, once its message is out.
		if it.Tag.reply == nil {
			h.answer(it, nil)
		}
		if !it.Duplicate && !it.Reused && it.Message.ID > h.b.lastID {
			if uid := it.Message.UserID; uid != nil {
				if p := h.b.accounts[*uid]; p != nil && p.name != "" {
					it.Message.User = p.name // renamed since it was sent
				}
			}
			f := encodeMessage(it.Message)
			h.changeRecent(func(b *broadcaster) { b.remember(f) })
			h.b.lastID = f.id
			h.broadcasted.Add(1)
			fresh++
			for cl := range h.b.live {
				// Frames the client is owed (its acks) go first: a client
				// with any owed takes the stream from catch-up after them.
				if cl.owedN.Load() > 0 || !cl.write(f.forProtocol(cl.proto), h.streamLimit) {
					// Its buffer is full: take it out of the live set and
					// feed it from the database from this message on.
					h.fallBehind(cl, f.id-1)
				}
			}
		}
	}
	if fresh > 0 {
		h.series.addMessages(fresh)
		h.opts.Observer.Broadcast(fresh, time.Since(began))
	}
	for _, it := range c.Items {
		if it.Tag.reply != nil {
			h.answer(it, nil)
		}
	}
}

// changeRecent runs f, a change to the recent set, under recentMu. The
// lock is released by defer: the broadcaster survives a panic (runEvent),
// and must not leave the catch-up readers locked out.
func (h *Hub) changeRecent(f func(b *broadcaster)) {
	h.recentMu.Lock()
	defer h.recentMu.Unlock()
	f(&h.b)
}

func (h *Hub) answer(it db.Item[origin], err error) {
	o := it.Tag
	switch {
	case err != nil:
		err = ErrStore
	case it.Reused:
		// A cid names one send: another text under it is refused, never
		// acked as if it were the message the cid names.
		err = ErrCIDReused
	}
	if o.reply != nil {
		o.reply <- sendResult{stored: it.Stored, err: err}
	}
	if o.c == nil {
		return
	}
	if err != nil {
		h.refuse(o.c, err, o.cid)
		return
	}
	if o.c.proto == V1 {
		h.mustSend(o.c, encode("ack", ackData{CID: o.cid, ID: it.Message.ID}))
	}
}

// join greets a new session and brings it into the live set: at once, or
// after replaying what it missed when it resumes with ?after=.
func (h *Hub) join(c *client) {
	h.b.members[c] = struct{}{}
	if c.userID != 0 {
		p := h.b.accounts[c.userID]
		if p == nil {
			p = &person{}
			h.b.accounts[c.userID] = p
		}
		p.sessions++
	}
	h.presenceChanged()
	if c.proto == V1 {
		h.mustSend(c, encode("hello", helloData{Session: c.id, User: c.name(), whoData: c.who(), LatestID: h.b.lastID}))
	}
	after := c.after
	switch {
	case after < 0 || after >= h.b.lastID:
		h.goLive(c)
	case h.b.lastID-after > int64(h.opts.ReplayLimit):
		// Too much to replay: the client reloads history over REST and
		// takes live messages from here.
		h.mustSend(c, encode("error", errorData{Code: "resync", Message: "too many messages missed: reload history"}))
		h.goLive(c)
	default:
		if joined, from := h.rejoin(c, after); !joined {
			go h.catchUp(c, from)
		}
	}
}

// behind counts the joined sessions that are catching up.
func (h *Hub) behind() int { return len(h.b.members) - len(h.b.live) }

func (h *Hub) goLive(c *client) {
	h.b.live[c] = struct{}{}
}

func (h *Hub) leave(c *client) {
	if _, ok := h.b.members[c]; !ok {
		return // never joined: the broadcaster stopped first
	}
	if p := h.b.accounts[c.userID]; p != nil {
		if p.sessions--; p.sessions <= 0 {
			delete(h.b.accounts, c.userID)
		}
	}
	delete(h.b.members, c)
	delete(h.b.live, c)
	h.presenceChanged()
}

func (h *Hub) fallBehind(c *client, after int64) {
	h.fellBehind.Add(1)
	delete(h.b.live, c)
	go h.catchUp(c, after)
}

// rejoin runs on the broadcaster for a client that has every message up to
// after. If the rest is in memory and fits its buffer, it is sent and the
// client joins the live set. Otherwise it reports false and how far the
// client now is, and the client goes on catching up from the database.
func (h *Hub) rejoin(c *client, after int64) (bool, int64) {
	if _, ok := h.b.members[c]; !ok {
		return true, after // gone: nothing more to do
	}
	gap, ok := h.b.since(after)
	if !ok {
		return false, after
	}
	for _, f := range gap {
		if !c.write(f.forProtocol(c.proto), h.streamLimit) {
			return false, after
		}
		after = f.id
	}
	h.goLive(c)
	return true, after
}

// catchUp feeds a client that is out of the live set from the database, as
// fast as it reads, until it has every stored message; then it asks the
// broadcaster to let it rejoin. Memory stays bounded by the session buffer
// however far behind the client is. A client that makes no progress for
// SlowTimeout is disconnected with 1008 "too slow"; it resumes with after=.
func (h *Hub) catchUp(c *client, after int64) {
	defer func() {
		// A panic here would end the process. The client, out of the live
		// set, would get nothing more: close it with 1011, and it resumes.
		if v := recover(); v != nil {
			h.recordPanic(v, placeCatchUp, c.subject())
			c.closeWith(websocket.CloseInternalServerErr, "internal error")
		}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	low := h.streamLimit / 2
	for {
		for c.queued.Load() > low || c.owedN.Load() > 0 {
			select {
			case <-c.drained:
			case <-tick.C: // to notice a client that stopped reading
			case <-c.gone:
				return
			case <-h.ctx.Done():
				return
			}
			if stalled := time.Since(time.Unix(0, c.lastWrite.Load())); c.queued.Load() > 0 && stalled > h.opts.SlowTimeout {
				h.dropSlow(c, "read nothing for "+stalled.Round(time.Second).String()+" while behind")
				return
			}
		}
		room := int(h.streamLimit - c.queued.Load())
		if room < 1 {
			continue // control frames took the room meanwhile
		}
		batch, err := h.fetch(after, room)
		if err != nil {
			if errors.Is(err, h.ctx.Err()) {
				return
			}
			h.RecordErrorAt(KindDatabase, placeCatchUp, err.Error(), c.subject())
			select {
			case <-tick.C:
			case <-c.gone:
				return
			case <-h.ctx.Done():
				return
			}
			continue
		}
		wrote := 0
		for _, f := range batch {
			if !c.write(f.forProtocol(c.proto), h.streamLimit) {
				break
			}
			after = f.id
			wrote++
		}
		if wrote == 0 && len(batch) > 0 {
			// Nothing went: the session is closing (its writes fail), or
			// control frames took the room. Fetching again at once would
			// spin on the database for a client that may be gone.
			select {
			case <-c.drained:
			case <-tick.C:
			case <-c.gone:
				return
			case <-h.ctx.Done():
				return
			}
			continue
		}
		if len(batch) < room {
			joined := false
			if !h.doWait(func() { joined, after = h.rejoin(c, after) }) || joined {
				return
			}
		}
	}
}

// mustSend hands a client a frame it must not miss (see client.send); a
// client owed too many is disconnected as too slow, and resumes later.
func (h *Hub) mustSend(c *client, frame []byte) {
	if !c.send(frame) {
		h.dropSlow(c, "owed more than "+strconv.Itoa(maxOwed)+" acks and notices")
	}
}

// dropSlow disconnects a client that is not reading, with 1008 "too slow".
func (h *Hub) dropSlow(c *client, detail string) {
	h.droppedSlow(c, detail)
	c.closeWith(websocket.ClosePolicyViolation, "too slow")
}

// droppedSlow counts a session disconnected for not reading, once however
// many ways (no progress, a write timeout) it is found out.
func (h *Hub) droppedSlow(c *client, detail string) {
	if c.slow.CompareAndSwap(false, true) {
		h.slowDropped.Add(1)
		h.RecordErrorAt(KindSlowClient, placeSlow, detail, c.subject())
	}
}

// presenceChanged marks presence for sending. Sends are coalesced: at most
// one every 250 ms, however many sessions come and go.
func (h *Hub) presenceChanged() {
	h.b.presenceDirty = true
	if h.b.presenceScheduled {
		return
	}
	h.b.presenceScheduled = true
	time.AfterFunc(250*time.Millisecond, func() { h.do(h.sendPresence) })
}

func (h *Hub) sendPresence() {
	h.b.presenceScheduled = false
	if !h.b.presenceDirty {
		return
	}
	h.b.presenceDirty = false
	people := presencePeople(h.b.members)
	// users is what clients before people read: each name once.
	users := make([]string, 0, len(people))
	for i, p := range people {
		if i == 0 || p.User != people[i-1].User {
			users = append(users, p.User)
		}
	}
	frame := encode("presence", presenceData{Online: len(h.b.members), Users: users, People: people})
	for c := range h.b.members {
		if c.proto == V1 {
			h.mustSend(c, frame)
		}
	}
}

// presenceKey is whom presence counts a session under: its account, or,
// for a guest, its name. A guest has nothing but a name to tell it by, so
// two tabs of one guest and two guests who chose one name look alike;
// grouping by name counts them as one line with two connections rather
// than as many lines as there are anonymous sockets, which keeps a
// presence frame as small as the list of names was (a few thousand
// tutorial clients are one "Guest" line, not a few thousand).
type presenceKey struct {
	userID int64
	guest  string
}

// presencePeople lists the people of the given sessions, one entry per
// account however many tabs and devices it has open, and one per guest
// name; sorted by name, case aside, then by account id (a guest, id 0,
// before an account of the same name).
func presencePeople(members map[*client]struct{}) []presencePerson {
	byKey := make(map[presenceKey]int)
	var people []presencePerson
	for c := range members {
		k := presenceKey{userID: c.userID}
		if c.userID == 0 {
			k.guest = c.name()
		}
		if i, ok := byKey[k]; ok {
			people[i].Devices++
			continue
		}
		byKey[k] = len(people)
		people = append(people, presencePerson{User: c.name(), whoData: c.who(), Devices: 1})
	}
	slices.SortFunc(people, func(a, b presencePerson) int {
		return cmp.Or(
			strings.Compare(strings.ToLower(a.User), strings.ToLower(b.User)),
			strings.Compare(a.User, b.User),
			cmp.Compare(a.id(), b.id()),
		)
	})
	return people
}

// typing tells everyone else that from is typing. An account's typing
// goes out at most once per TypingInterval however many of its tabs type,
// and never to its own other tabs: the person sees no "you are typing",
// the others see them once. A guest's is limited per connection (onMessage).
func (h *Hub) typing(from *client) {
	if p := h.b.accounts[from.userID]; p != nil {
		now := time.Now()
		if now.Sub(p.typed) < h.opts.TypingInterval {
			return
		}
		p.typed = now
	}
	frame := encode("typing", typingData{User: from.name(), UserID: from.who().UserID})
	for c := range h.b.members {
		if c != from && c.proto == V1 && (from.userID == 0 || c.userID != from.userID) {
			c.write(frame, h.controlLimit)
		}
	}
}

// person is what the broadcaster keeps per account.
type person struct {
	sessions int       // joined sessions
	typed    time.Time // when its typing was last sent
	// name is the account's name since a rename while it had sessions
	// open, "" if none: a message sent under the old name and committed
	// after the rename goes out under the new one.
	name string
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
	h.doWait(func() { h.renamed(id, name) })
}

// renamed is Rename on the broadcaster goroutine.
func (h *Hub) renamed(id int64, name string) {
	// Every session, joined or still upgrading (whose name was read before
	// the rename), under h.mu as EndSessions does.
	h.mu.Lock()
	for c := range h.clients {
		if c.userID == id {
			c.setName(name)
		}
	}
	h.mu.Unlock()
	if p := h.b.accounts[id]; p != nil {
		p.name = name
	}
	h.changeRecent(func(b *broadcaster) {
		for i, f := range b.recent {
			if f.userID == id {
				b.recent[i] = f.renamed(name)
				b.recentBytes += b.recent[i].size() - f.size()
			}
		}
	})
	frame := encode("person", personData{UserID: id, User: name})
	for c := range h.b.members {
		if c.proto == V1 {
			h.mustSend(c, frame)
		}
	}
	h.presenceChanged()
}
