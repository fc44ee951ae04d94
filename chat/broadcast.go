package chat

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// broadcaster is the one goroutine that hands events to connections, and
// the one registry of them: every connection the hub has (from melody's
// connect to its disconnect), its person, whether it is live or catching
// up, and the replay window. Nothing else reads its maps: other goroutines
// send it typed operations (op), which it applies one at a time, in order
// with the commits. Because one goroutine does every send, every client
// receives messages in id order; because joining the live set happens on
// the same goroutine, a client that catches up (after a resume or after
// falling behind) joins exactly after the last message it was given: no
// gap, no duplicate.
type broadcaster struct {
	h *Hub // options, store, counters, error log: the services it uses

	ops  chan op       // operations, in order
	quit chan struct{} // closed when the goroutine has stopped

	lastID int64 // newest message handed out
	// published is lastID for other goroutines: catch-up reads no further,
	// so every membership change before a message is applied (to the
	// connection's rooms) before catch-up can hand that message out.
	published atomic.Int64

	// lane shares a quiet chat's direct writes (lane.go); nil on one core.
	// fan is fanOut's list of recipients, kept between messages.
	lane *lane
	fan  []*client

	// The registry. conns is every connection; live is those of them
	// that receive messages as they commit (the rest are catching up).
	conns map[*client]struct{}
	live  map[*client]struct{}
	// ahead holds connections that resumed from past lastID, each with
	// its ?after=: what they read over REST, committed before the
	// broadcaster had it, or in a cluster what another node served them
	// before this one applied it. Each joins the live set with the first
	// event after its own point, so it gets nothing twice.
	ahead map[*client]int64
	// In a cluster (Options.Peers): the other nodes' presence by node, and
	// this node's as last told them (peers.go).
	peers          map[string]peerPresence
	sharedPresence []byte
	// inRoom is, for each room, the connections that see it: a message
	// goes to its room's connections, not to every connection.
	inRoom map[int64]map[*client]struct{}
	// accounts holds, for each account with a connection, what is kept
	// per person rather than per connection; an entry goes with its last
	// connection, so the map is bounded by conns.
	accounts map[int64]*person
	online   atomic.Int64 // len(conns), for readers on other goroutines
	peak     int          // most connections open at once

	window window // the newest messages, for replay

	presenceDirty     bool // presence changed since it was last sent
	presenceScheduled bool // a presence send is due

	// runs are the clients that read "messages" frames and have frames
	// of the batch being delivered gathered in their run (flushRuns).
	runs []*client
	// spareRuns are the arrays of runs handed out before, for the next
	// batch's: a client holds one only while a batch is delivered.
	spareRuns [][]*frames
	// notices and posted gather a batch's messages for notifyLoop and
	// Options.Posted; they keep their arrays from batch to batch.
	notices, posted []db.Message
}

func (b *broadcaster) init(h *Hub, latestID int64) {
	b.h = h
	b.ops = make(chan op, 1024)
	b.quit = make(chan struct{})
	b.lastID = latestID
	b.conns = make(map[*client]struct{})
	b.live = make(map[*client]struct{})
	b.ahead = make(map[*client]int64)
	b.inRoom = make(map[int64]map[*client]struct{})
	b.published.Store(latestID)
	b.accounts = make(map[int64]*person)
	b.window.init(latestID)
}

// An op is one change the broadcaster applies: to its registry (join,
// leave, rename, rejoin after catching up), or an event to hand out
// (commit, delete, typing, presence).
type op interface{ isOp() }

type (
	// opJoin: a connection is open (edge.go, melody's connect).
	opJoin struct{ c *client }
	// opLeave: a connection has closed (edge.go, melody's disconnect).
	opLeave struct{ c *client }
	// opCommit: a batch the log committed, or failed to.
	opCommit struct{ commit db.Commit[origin] }
	// opPrune: the messages under below were pruned from the store.
	opPrune struct{ below int64 }
	// opRename: an account's new name, stored.
	opRename struct {
		id   int64
		name string
	}
	// opNick: a guest changed its name; presence goes out again.
	opNick struct{}
	// opTyping: c is typing in room.
	opTyping struct {
		c    *client
		room int64
	}
	// opPresence: the coalesced presence send is due.
	opPresence struct{}
	// opMembership: an account joined (in) or left a room, stored.
	opMembership struct {
		user, room int64
		in         bool
	}
	// opRoom: a room was created or changed (event: created, updated,
	// archived), stored.
	opRoom struct {
		room  db.Room
		event string
	}
	// opMarked: an account read a room up to id, from the connection from.
	opMarked struct {
		from           *client
		user, room, id int64
	}
	// opRejoin: a catching-up connection has every message up to *after;
	// the broadcaster sets *joined and *after (see rejoin).
	opRejoin struct {
		c      *client
		after  *int64
		joined *bool
	}
	// opRead runs f on the broadcaster, for a reader of the registry
	// (Snapshot, Disconnect, EndSessions...): f reads, and changes nothing
	// but the connections it closes.
	opRead struct{ f func() }
	// opStop ends the goroutine (Close, last).
	opStop struct{}
	// waited is an op whose sender waits for it to be applied.
	waited struct {
		op
		done chan struct{}
	}
)

func (opJoin) isOp()       {}
func (opLeave) isOp()      {}
func (opCommit) isOp()     {}
func (opPrune) isOp()      {}
func (opRename) isOp()     {}
func (opNick) isOp()       {}
func (opTyping) isOp()     {}
func (opPresence) isOp()   {}
func (opRejoin) isOp()     {}
func (opMembership) isOp() {}
func (opRoom) isOp()       {}
func (opMarked) isOp()     {}
func (opRead) isOp()       {}
func (opStop) isOp()       {}

// send queues o, after everything queued before it. It reports false once
// the broadcaster has stopped.
func (b *broadcaster) send(o op) bool {
	select {
	case b.ops <- o:
		return true
	case <-b.quit:
		return false
	}
}

// sendWait is send, and waits for o to be applied. It reports false once
// the broadcaster has stopped, whether or not o was applied. A panic in
// applying o (recovered by apply) ends the wait too.
func (b *broadcaster) sendWait(o op) bool {
	done := make(chan struct{})
	if !b.send(waited{o, done}) {
		return false
	}
	select {
	case <-done:
		return true
	case <-b.quit:
		return false
	}
}

// read runs f on the broadcaster and waits for it (see opRead).
func (b *broadcaster) read(f func()) bool { return b.sendWait(opRead{f}) }

// start runs the broadcaster, and its lane on a machine of several cores,
// each on a goroutine of its own, from now on.
func (b *broadcaster) start() {
	if runtime.GOMAXPROCS(0) > 1 {
		b.lane = newLane()
		go b.lane.run(b.h)
	}
	go b.run()
}

func (b *broadcaster) run() {
	defer close(b.quit)
	if b.lane != nil {
		defer close(b.lane.jobs) // it ends with the broadcaster
	}
	for o := range b.ops {
		if _, stop := o.(opStop); stop {
			return
		}
		b.apply(o)
	}
}

// apply is every operation, in one switch. A panic in one is an error
// entry, and the broadcaster goes on with the next: stopped, it would leave
// every sender and every client waiting forever.
func (b *broadcaster) apply(o op) {
	defer b.h.recordRecovered(placeBroadcaster, "the chat room")
	switch o := o.(type) {
	case waited:
		defer close(o.done)
		b.apply(o.op)
	case opJoin:
		b.join(o.c)
	case opLeave:
		b.leave(o.c)
	case opCommit:
		b.deliver(o.commit)
	case opPrune:
		b.window.change(func(w *window) { w.dropBelow(o.below) })
	case opRename:
		b.renamed(o.id, o.name)
	case opNick:
		b.presenceChanged()
	case opTyping:
		b.typing(o.c, o.room)
	case opMembership:
		b.membership(o.user, o.room, o.in)
	case opRoom:
		b.roomChanged(o.room, o.event)
	case opMarked:
		b.marked(o.from, o.user, o.room, o.id)
	case opPresence:
		b.sendPresence()
	case opPeerPresence:
		b.heardPeer(o.node, o.p)
	case opPresenceBeat:
		b.presenceBeat()
	case opPeerTyping:
		b.peerTyping(o.t)
	case opRejoin:
		*o.joined, *o.after = b.rejoin(o.c, *o.after)
	case opRead:
		o.f()
	}
}

// audience names a kind of event by who may receive it.
type audience int

const (
	// toLive: a message of the room. The room's live connections on
	// either protocol; one that is catching up gets it from the window or
	// the database instead.
	toLive audience = iota
	// toV1: a notice of the server (person, presence). Every nochat.v1
	// connection, live or catching up: notices are not in the log.
	toV1
	// toRoomV1: a room's notice (deleted, room, membership). Every
	// nochat.v1 connection that sees the room.
	toRoomV1
	// toOthersV1: typing in the room. Every nochat.v1 connection that
	// sees it but the typist's own, and, for an account, none of its
	// other tabs.
	toOthersV1
)

// recipients is who receives an event: the one answer to "who gets this",
// for every event the broadcaster hands out. room is the event's room (for
// toLive, toRoomV1 and toOthersV1); from is the connection it comes from
// (for toOthersV1).
func (b *broadcaster) recipients(to audience, room int64, from *client) iter.Seq[*client] {
	return func(yield func(*client) bool) {
		switch to {
		case toLive:
			for c := range b.inRoom[room] {
				if _, live := b.live[c]; live && !yield(c) {
					return
				}
			}
		case toV1:
			for c := range b.conns {
				if c.proto == V1 && !yield(c) {
					return
				}
			}
		case toRoomV1, toOthersV1:
			for c := range b.inRoom[room] {
				if c.proto != V1 {
					continue
				}
				if to == toOthersV1 && (c == from || from.userID != 0 && c.userID == from.userID) {
					continue
				}
				if !yield(c) {
					return
				}
			}
		}
	}
}

// notify hands a notice every recipient must get (see mustSend).
func (b *broadcaster) notify(to audience, room int64, frame []byte) {
	for c := range b.recipients(to, room, nil) {
		b.h.mustSend(c, frame)
	}
}

// deliver answers each sender of a committed batch and hands its messages to
// the live clients, in id order.
func (b *broadcaster) deliver(c db.Commit[origin]) {
	h := b.h
	if c.FromCommand() {
		// A command of a cluster's log, made through another node.
		if a := c.Account; a != nil {
			b.accountChanged(*a)
		}
		if r := c.Room; r != nil {
			b.roomFromLog(*r)
		}
		for room, ids := range c.Deleted {
			b.forget(room, ids)
		}
		if r := c.Read; r != nil {
			b.marked(nil, r.User, r.Room, r.ID) // every page of theirs here
		}
		if n := c.Notify; n != nil {
			b.notifyLevel(n.User, n.Room, n.Level)
		}
		b.endSessions(c.Ended)
		return
	}
	h.opts.Observer.Committed(len(c.Items), c.Took, c.InCommit, c.Err)
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
	// A quiet chat's message is written to idle clients from here (see
	// queue.direct); a busy one's goes through the sessions' goroutines:
	// when the writer commits several at once, or more work waits for the
	// broadcaster (its own writes would hold it up further).
	direct := len(c.Items) == 1 && len(b.ops) == 0
	fresh := 0
	notices, posted := b.notices[:0], b.posted[:0]
	defer func() {
		clear(notices)
		clear(posted)
		b.notices, b.posted = notices[:0], posted[:0]
	}()
	for _, it := range c.Items {
		// A WebSocket sender hears first: its ack, carrying the id, comes
		// before the message itself, so a client can turn its pending line
		// into the stored message by cid and then recognise the message by
		// id. A REST sender is answered below, once its message is out.
		if it.Tag.reply == nil {
			h.answer(it, nil)
		}
		var f *frames
		switch {
		case it.Change != nil && !it.Duplicate && it.Change.ID > b.lastID:
			f = encodeChange(*it.Change)
			b.window.change(func(w *window) {
				if it.Change.Kind == db.Delete {
					// Gone from the store with its earlier changes: gone
					// from the window, so no catch-up hands them out.
					w.forget(it.Change.Message)
				}
				w.remember(f)
			})
		case it.Change == nil && it.Refused == nil && !it.Duplicate && !it.Reused && it.Message.ID > b.lastID:
			if uid := it.Message.UserID; uid != nil {
				if p := b.accounts[*uid]; p != nil && p.name != "" {
					it.Message.User = p.name // renamed since it was sent
				}
			}
			if it.Tag.quote != nil {
				it.Message.ReplyTo = it.Tag.quote
			}
			f = encodeMessage(it.Message)
			b.window.change(func(w *window) { w.remember(f) })
			h.broadcasted.Add(1)
			fresh++
			if h.opts.Pusher != nil && it.Local {
				// On a cluster every node holds every push
				// subscription: the node it was sent through pushes it.
				notices = append(notices, it.Message)
			}
			if h.opts.Posted != nil && it.Local {
				// On a cluster every node applies the message; the node
				// it was sent through calls the bots' webhooks, once.
				posted = append(posted, it.Message)
			}
		}
		if f != nil {
			b.lastID = f.id
			b.published.Store(f.id)
			for c, after := range b.ahead {
				if after < f.id {
					delete(b.ahead, c)
					b.live[c] = struct{}{}
				}
			}
			if direct {
				b.fanOut(f) // a commit of one message: no runs to gather
			} else {
				for cl := range b.recipients(toLive, f.room, nil) {
					if cl.batch {
						if len(cl.run) == 0 {
							b.runs = append(b.runs, cl)
							if n := len(b.spareRuns); n > 0 {
								cl.run = b.spareRuns[n-1]
								b.spareRuns = b.spareRuns[:n-1]
							}
						}
						cl.run = append(cl.run, f)
						continue
					}
					if !cl.stream(f, false) {
						// Its buffer is full: take it out of the live set and
						// feed it from the database from this message on.
						b.fallBehind(cl, f.id-1)
					}
				}
			}
			// One that resumed from this very event has it: it takes the
			// next live (else it would wait for one, in a quiet chat for
			// long, and Close for it). Almost always none waits.
			if len(b.ahead) > 0 {
				for c, after := range b.ahead {
					if after == f.id {
						delete(b.ahead, c)
						b.live[c] = struct{}{}
					}
				}
			}
		}
	}
	b.flushRuns()
	for _, m := range notices {
		h.queueNotice(m)
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
	for _, m := range posted {
		h.opts.Posted(m)
	}
}

// answer tells the sender of a committed (or failed) message.
func (h *Hub) answer(it db.Item[origin], err error) {
	o := it.Tag
	switch {
	case errors.Is(err, db.ErrUnavailable):
		err = ErrUnavailable
	case err != nil:
		err = ErrStore
	case it.Reused:
		// A cid names one send: another text under it is refused, never
		// acked as if it were the message the cid names.
		err = ErrCIDReused
	case it.Refused != nil:
		err = h.refusalOf(it.Refused)
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
		id := it.Message.ID
		if it.Change != nil {
			id = it.Change.ID
		}
		h.mustSend(o.c, encode("ack", ackData{CID: o.cid, ID: id}))
	}
}

// maxSpareRuns bounds the arrays kept for runs: at most 4 KiB each, the
// number of clients a busy batch reaches.
const maxSpareRuns = 256

// flushRuns hands each client that reads "messages" frames the frames of
// the batch that deliver gathered for it, after the batch's acks: its
// messages then leave in one frame, not one each as they came.
func (b *broadcaster) flushRuns() {
	for _, cl := range b.runs {
		if n := cl.streamRun(cl.run); n < len(cl.run) {
			b.fallBehind(cl, cl.run[n].id-1) // as stream's refusal above
		}
		clear(cl.run)
		if cap(cl.run) <= batchStreamLimit && len(b.spareRuns) < maxSpareRuns {
			b.spareRuns = append(b.spareRuns, cl.run[:0])
		}
		cl.run = nil
	}
	clear(b.runs)
	b.runs = b.runs[:0]
}

// join registers a new connection, greets it and brings it into the live
// set: at once, or after replaying what it missed when it resumes with
// ?after=.
func (b *broadcaster) join(c *client) {
	h := b.h
	if refused := h.opts.Refused; refused != nil && refused(c.remote) {
		// Banned while it was being opened: the door let it in, and the
		// ban's CloseAddresses ran before it joined. It never joins.
		c.closeWith(CloseAccountEnded, CloseAddressBanned)
		return
	}
	b.conns[c] = struct{}{}
	b.counted()
	b.setRooms(c, h.roomsFor(c))
	if c.userID != 0 {
		p := b.accounts[c.userID]
		if p == nil {
			p = &person{}
			b.accounts[c.userID] = p
			h.away.online(c.userID)
		} else if p.name != "" {
			// Renamed after this connection read its name, before it
			// joined: it speaks under the new one, as its account's other
			// connections do.
			c.setName(p.name)
		}
		p.sessions++
	}
	b.presenceChanged()
	after := c.after
	// Past lastID, a resume point is one the client read over REST after
	// the writer committed it, before the broadcaster had it (on a
	// cluster, one another node served): the rest of that commit would
	// reach it twice if it joined the live set now. Past what is
	// committed, it names nothing of this database: it joins at once, and
	// the hello's latest id tells it so.
	stored := after <= h.committed.Load()
	ahead := after > b.lastID && (h.opts.Stream != nil || stored)
	if c.proto == V1 {
		latest := b.lastID
		if ahead && stored {
			// What it has is stored here: not another database. (On a
			// cluster, a point this node has not applied yet says the
			// newest it has, as before.)
			latest = after
		}
		h.mustSend(c, encode("hello", helloData{Session: c.id, User: c.name(), whoData: c.who(), LatestID: latest, Rooms: c.roomIDs()}))
	}
	switch {
	case ahead:
		b.ahead[c] = after
	case after < 0 || after >= b.lastID:
		b.live[c] = struct{}{}
	case b.lastID-after > int64(h.opts.ReplayLimit):
		// Too much to replay: the client reloads history over REST and
		// takes live messages from here.
		h.mustSend(c, encode("error", errorData{Code: "resync", Message: "too many messages missed: reload history"}))
		b.live[c] = struct{}{}
	default:
		if joined, from := b.rejoin(c, after); !joined {
			go h.catchUp(c, from)
		}
	}
}

// counted brings the connection counts up to date after conns changed:
// here, on the one goroutine that changes it, so that the dashboard's
// series sees the counts in the order they happened.
func (b *broadcaster) counted() {
	n := len(b.conns)
	b.online.Store(int64(n))
	b.peak = max(b.peak, n)
	b.h.series.setConnections(n)
}

// behind counts the connections that are catching up.
func (b *broadcaster) behind() int { return len(b.conns) - len(b.live) }

func (b *broadcaster) leave(c *client) {
	if _, ok := b.conns[c]; !ok {
		return // never joined: the broadcaster stopped first
	}
	if p := b.accounts[c.userID]; p != nil {
		if p.sessions--; p.sessions <= 0 {
			delete(b.accounts, c.userID)
			b.h.away.offline(c.userID, time.Now(), b.h.opts.PushGrace)
		}
	}
	b.setRooms(c, nil)
	delete(b.conns, c)
	delete(b.live, c)
	delete(b.ahead, c)
	b.counted()
	b.presenceChanged()
}

func (b *broadcaster) fallBehind(c *client, after int64) {
	b.h.fellBehind.Add(1)
	delete(b.live, c)
	go b.h.catchUp(c, after)
}

// rejoin runs on the broadcaster for a client that has every message up to
// after. If the rest is in memory and fits its buffer, it is sent and the
// client joins the live set. Otherwise it reports false and how far the
// client now is, and the client goes on catching up from the database.
func (b *broadcaster) rejoin(c *client, after int64) (bool, int64) {
	if _, ok := b.conns[c]; !ok {
		return true, after // gone: nothing more to do
	}
	gap, ok := b.window.since(after)
	if !ok {
		return false, after
	}
	for _, f := range gap {
		if c.sees(f.room) && !c.stream(f, false) {
			return false, after
		}
		after = f.id
	}
	b.live[c] = struct{}{}
	return true, after
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
func (b *broadcaster) presenceChanged() {
	b.presenceDirty = true
	if b.presenceScheduled {
		return
	}
	b.presenceScheduled = true
	time.AfterFunc(250*time.Millisecond, func() { b.send(opPresence{}) })
}

func (b *broadcaster) sendPresence() {
	b.presenceScheduled = false
	if !b.presenceDirty {
		return
	}
	b.presenceDirty = false
	people, online := presencePeople(b.conns), len(b.conns)
	if b.h.opts.Peers != nil {
		b.sharePresence(people, online, false)
		people, online = b.withPeers(people, online)
	}
	// users is what clients before people read: each name once.
	users := make([]string, 0, len(people))
	for i, p := range people {
		if i == 0 || p.User != people[i-1].User {
			users = append(users, p.User)
		}
	}
	b.notify(toV1, 0, encode("presence", presenceData{Online: online, Users: users, People: people}))
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
	// byName is an account told by its name alone: another node's, of
	// a version from before accounts were shared (withPeers).
	byName bool
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
	slices.SortFunc(people, byName)
	return people
}

// byName orders people by name, case aside, then by account id.
func byName(a, b presencePerson) int {
	return cmp.Or(
		strings.Compare(strings.ToLower(a.User), strings.ToLower(b.User)),
		strings.Compare(a.User, b.User),
		cmp.Compare(a.id(), b.id()),
	)
}

// typing tells everyone else that from is typing. An account's typing
// goes out at most once per TypingInterval however many of its tabs type,
// and never to its own other tabs: the person sees no "you are typing",
// the others see them once. A guest's is limited per connection (onMessage).
func (b *broadcaster) typing(from *client, room int64) {
	if !from.sees(room) {
		return
	}
	if p := b.accounts[from.userID]; p != nil {
		now := time.Now()
		if now.Sub(p.typed) < b.h.opts.TypingInterval {
			return
		}
		p.typed = now
	}
	t := typingData{User: from.name(), UserID: from.who().UserID, Room: room}
	frame := encode("typing", t)
	for c := range b.recipients(toOthersV1, room, from) {
		c.write(frame, c.melodyLimit) // none when it would wait: it is stale soon
	}
	b.shareTyping(t)
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

// accountChanged is what a command of a cluster's log, made through another
// node, changed of an account: a deactivated or banned account's pages
// close saying so (not only that their sessions ended), the addresses a
// ban refuses close too, and the handlers hear of them (Options.Bans).
func (b *broadcaster) accountChanged(a db.AccountChange) {
	reason := CloseDeactivated
	switch {
	case a.Ban && a.ID == 0:
		reason = CloseAddressBanned // an address banned on its own
	case a.Ban:
		reason = CloseBanned
	}
	if a.Ended {
		b.endAccount(a.ID, reason)
	}
	if a.Name != "" {
		b.renamed(a.ID, a.Name)
	}
	if a.Role != "" {
		b.setRole(a.ID, a.Role)
	}
	b.closeAddresses(a.Banned, CloseAddressBanned) // others there have no account banned
	if bans := b.h.opts.Bans; bans != nil {
		if len(a.Banned) > 0 {
			bans(a.Banned, true)
		}
		if len(a.Unbanned) > 0 {
			bans(a.Unbanned, false)
		}
	}
}

// roomFromLog is what a command of a cluster's log, made through another
// node, changed of a room or of who is in it: the directory learns of it,
// and the pages are told, as CreateRoom, ChangeRoom, Join and Leave tell
// them on the node where they were made.
func (b *broadcaster) roomFromLog(c db.RoomChange) {
	d := &b.h.dir
	if r := c.Room; r != nil {
		d.mu.Lock()
		d.rooms[r.ID], d.bySlug[r.Slug] = *r, r.ID
		d.mu.Unlock()
		event := "updated"
		switch {
		case c.Created:
			event = "created"
		case c.Archived:
			event = "archived"
		}
		b.roomChanged(*r, event)
	}
	for _, user := range c.Joined {
		d.setMember(user, c.ID, true)
		b.membership(user, c.ID, true)
	}
	for _, user := range c.Left {
		d.setMember(user, c.ID, false)
		b.membership(user, c.ID, false)
	}
}

// renamed is Rename on the broadcaster goroutine.
func (b *broadcaster) renamed(id int64, name string) {
	for c := range b.conns {
		if c.userID == id {
			c.setName(name)
		}
	}
	if p := b.accounts[id]; p != nil {
		p.name = name
	}
	b.window.change(func(w *window) {
		for i, f := range w.recent {
			if f.userID == id {
				w.recent[i] = f.renamed(name)
				w.recentBytes += w.recent[i].size() - f.size()
			}
		}
	})
	b.notify(toV1, 0, encode("person", personData{UserID: id, User: name}))
	b.presenceChanged()
}

// maxDeletedIDs is how many ids one deleted frame of forget carries.
const maxDeletedIDs = 256

// forget runs on the broadcaster when a command of a cluster's log deleted
// messages of room (db.Commit.Deleted: a ban's deletions, from a log
// written before each was an event of its own): they leave the window, so
// no catch-up hands them out again, and the room's clients are told (no
// one else: not even an id of a private room reaches a non-member), in
// frames of up to maxDeletedIDs ids.
func (b *broadcaster) forget(room int64, ids []int64) {
	// With their changes: the store deleted those with them.
	b.window.change(func(w *window) { w.forget(ids...) })
	for chunk := range slices.Chunk(ids, maxDeletedIDs) {
		b.notify(toRoomV1, room, encode("deleted", deletedData{ID: chunk[0], IDs: chunk}))
	}
}

// setRooms gives c the rooms it sees (nil: none, as it leaves), in its
// published set and in the broadcaster's index.
func (b *broadcaster) setRooms(c *client, set roomSet) {
	if old := c.rooms.Load(); old != nil {
		for id := range *old {
			if _, keep := set[id]; keep {
				continue
			}
			if in := b.inRoom[id]; in != nil {
				delete(in, c)
				if len(in) == 0 {
					delete(b.inRoom, id)
				}
			}
		}
	}
	for id := range set {
		in := b.inRoom[id]
		if in == nil {
			in = make(map[*client]struct{})
			b.inRoom[id] = in
		}
		in[c] = struct{}{}
	}
	if set == nil {
		set = roomSet{}
	}
	c.rooms.Store(&set)
}

// membership applies an account joining (in) or leaving a room to its
// connections, in order with messages: no message of the room committed
// after this op reaches a connection that left, and every one reaches one
// that joined. The room's people, and the account's own tabs, are told.
func (b *broadcaster) membership(user, room int64, in bool) {
	r, _ := b.h.Room(room)
	name := ""
	if !in {
		// Told before it goes, while the leaver still sees the room.
		b.notifyMembership(r, user, &name, in)
	}
	for c := range b.conns {
		if c.userID == user && c.proto == V1 {
			b.setRooms(c, b.h.roomsFor(c))
		}
	}
	if in {
		b.notifyMembership(r, user, &name, in)
	}
}

func (b *broadcaster) notifyMembership(r db.Room, user int64, name *string, in bool) {
	for c := range b.conns {
		if c.userID == user && *name == "" {
			*name = c.name()
		}
	}
	frame := encode("membership", membershipData{Room: r.ID, UserID: user, User: *name, Joined: in, Info: &r})
	sent := make(map[*client]bool)
	for c := range b.recipients(toRoomV1, r.ID, nil) {
		sent[c] = true
		b.h.mustSend(c, frame)
	}
	for c := range b.conns {
		if c.userID == user && c.proto == V1 && !sent[c] {
			b.h.mustSend(c, frame)
		}
	}
}

// roomChanged tells a room's change to everyone who sees it: its members'
// connections and, for an open room, every account's (it is in their list
// of rooms to join). Guests' rooms follow the room's guests setting and
// archiving.
func (b *broadcaster) roomChanged(r db.Room, event string) {
	for c := range b.conns {
		if c.userID == 0 && c.proto == V1 {
			b.setRooms(c, b.h.roomsFor(c))
		}
	}
	frame := encode("room", roomData{Room: r, Event: event})
	for c := range b.conns {
		if c.proto != V1 {
			continue
		}
		if c.sees(r.ID) || r.Kind == db.KindOpen && c.userID != 0 {
			b.h.mustSend(c, frame)
		}
	}
}

// marked tells an account's other tabs that it read room up to id, so
// their unread counts agree.
func (b *broadcaster) marked(from *client, user, room, id int64) {
	frame := encode("read", readData{Room: room, LastRead: id})
	for c := range b.conns {
		if c.userID == user && c != from && c.proto == V1 {
			b.h.mustSend(c, frame)
		}
	}
}
