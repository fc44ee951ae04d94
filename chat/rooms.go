package chat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"nochat/db"
)

// Rooms: the directory (every room and who is in it, kept in memory and
// changed only after the store), the rules of who may see, post in and
// change a room, and the Hub's API for them. The broadcaster learns of
// every change as an op (opMembership, opRoom), in order with messages.

// roomSet is the rooms a connection sees. A published set is never
// changed: a change makes a new one (client.rooms), so the catch-up
// goroutine reads it without a lock.
type roomSet map[int64]struct{}

func (s roomSet) has(id int64) bool {
	_, ok := s[id]
	return ok
}

// directory is every room and every membership, loaded at start and
// changed by the Hub's room API after the store has the change.
type directory struct {
	mu      sync.RWMutex
	rooms   map[int64]db.Room
	bySlug  map[string]int64
	members map[int64]roomSet // account → its rooms
	// changes counts setMember's calls: a first read of an account's
	// rooms that a change overtook reads them again (roomsOf).
	changes uint64
}

func (d *directory) load(ctx context.Context, store *db.Store) error {
	rooms, err := store.Rooms(ctx)
	if err != nil {
		return err
	}
	d.rooms = make(map[int64]db.Room, len(rooms))
	d.bySlug = make(map[string]int64, len(rooms))
	for _, r := range rooms {
		d.rooms[r.ID] = r
		d.bySlug[r.Slug] = r.ID
	}
	d.members = make(map[int64]roomSet)
	return nil
}

// roomsOf is an account's rooms, read from the store the first time.
func (h *Hub) roomsOf(ctx context.Context, user int64) (roomSet, error) {
	d := &h.dir
	for {
		d.mu.RLock()
		set, ok := d.members[user]
		changes := d.changes
		d.mu.RUnlock()
		if ok {
			return set, nil
		}
		ids, err := h.store.Memberships(ctx, user)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		if set, ok := d.members[user]; ok {
			d.mu.Unlock()
			return set, nil // read meanwhile by another request
		}
		if d.changes != changes {
			// A membership changed while the store was read (on a
			// cluster, one made through another node): what was read
			// may be from before it, and setMember passed this list by.
			d.mu.Unlock()
			continue
		}
		set = make(roomSet, len(ids))
		for _, id := range ids {
			set[id] = struct{}{}
		}
		d.members[user] = set
		d.mu.Unlock()
		return set, nil
	}
}

// setMember records, after the store, that user joined or left room, and
// returns the account's new set (nil if it was never read: the next
// roomsOf reads the store).
func (d *directory) setMember(user, room int64, in bool) roomSet {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changes++
	old, ok := d.members[user]
	if !ok {
		return nil
	}
	set := make(roomSet, len(old)+1)
	for id := range old {
		set[id] = struct{}{}
	}
	if in {
		set[room] = struct{}{}
	} else {
		delete(set, room)
	}
	d.members[user] = set
	return set
}

// CatchUp has this node apply what its cluster's log holds now (2 s at
// most), and its list of rooms and their people follow, before a request
// that found no room, or found its person outside it, looks again: a
// room made or joined through another node a moment ago (a load balancer
// sends a person's next request anywhere) is then found here too. It
// reports false, at once, on a single node, where there is nothing to
// wait for.
func (h *Hub) CatchUp(ctx context.Context) bool {
	if !h.store.CatchUp(ctx) {
		return false
	}
	h.b.read(func() {}) // the commits applied are handed out
	return true
}

// Room returns the room with the given id.
func (h *Hub) Room(id int64) (db.Room, bool) {
	h.dir.mu.RLock()
	defer h.dir.mu.RUnlock()
	r, ok := h.dir.rooms[id]
	return r, ok
}

// RoomBySlug returns the room with the given slug.
func (h *Hub) RoomBySlug(slug string) (db.Room, bool) {
	h.dir.mu.RLock()
	defer h.dir.mu.RUnlock()
	id, ok := h.dir.bySlug[slug]
	if !ok {
		return db.Room{}, false
	}
	return h.dir.rooms[id], true
}

// guestRooms is the rooms a guest sees: open ones that let guests in.
func (h *Hub) guestRooms() roomSet {
	h.dir.mu.RLock()
	defer h.dir.mu.RUnlock()
	return h.dir.guestRooms()
}

func (d *directory) guestRooms() roomSet {
	set := make(roomSet)
	for id, r := range d.rooms {
		if r.Kind == db.KindOpen && r.Guests && !r.IsArchived() {
			set[id] = struct{}{}
		}
	}
	return set
}

// defaultRooms is an echo-protocol connection's: the default room only.
var defaultRooms = roomSet{db.DefaultRoom: {}}

// roomsFor is the rooms c sees now, from the directory: on the
// broadcaster, when c joins and when rooms change, so that a change made
// between the upgrade and the join is not missed. An account's rooms were
// read when its connection was admitted (ServeWSAs).
func (h *Hub) roomsFor(c *client) roomSet {
	if c.proto == Echo {
		return defaultRooms
	}
	h.dir.mu.RLock()
	defer h.dir.mu.RUnlock()
	if c.userID == 0 {
		return h.dir.guestRooms()
	}
	if set, ok := h.dir.members[c.userID]; ok {
		return set
	}
	return defaultRooms
}

// Access is what a person may do in a room.
type Access struct {
	See    bool // read its messages (REST, page, socket)
	Member bool // it is one of their rooms
	Join   bool // may make it one of their rooms (open rooms)
	Post   bool // may send to it
	Manage bool // may rename, archive and invite to it: an admin, or its creator
	Invite bool // may add people
	// Why says why Post is false, for a refusal.
	Why error
}

// Refusals of the room rules.
var (
	// ErrRoomStore is ErrStore for a room change: the database refused it.
	ErrRoomStore    = &Refusal{"store_failed", "the change could not be stored; try again shortly"}
	ErrNoRoom       = &Refusal{"no_room", "no such room, or it is not one of yours"}
	ErrArchived     = &Refusal{"archived", "this room is archived: it is read-only"}
	errPostAdmins   = &Refusal{"forbidden", "only admins post in this room"}
	errPostMembers  = &Refusal{"forbidden", "join this room to post in it"}
	errNotManager   = &Refusal{"forbidden", "only an admin or the room's creator may change this room"}
	errNotInviter   = &Refusal{"forbidden", "only the room's members or an admin may invite people to it"}
	errDirectFixed  = &Refusal{"forbidden", "a direct conversation's people are fixed: start one with everyone you want in it"}
	errLeaveDefault = &Refusal{"forbidden", "everyone is in the default room: it cannot be left"}
	errNotOpen      = &Refusal{"forbidden", "only open rooms can be joined without an invitation"}
	errGuestRooms   = &Refusal{"sign_in_required", "sign in to have rooms of your own"}
	// ErrBotRooms refuses a room change for or by a bot: its rooms are
	// what an admin grants it, and nothing else.
	ErrBotRooms = &Refusal{"forbidden", "a bot's rooms are granted by an admin: it cannot join, leave, create or be invited to rooms"}
)

// AccessTo is what id may do in r. An admin does not see a private or
// direct room they are not in (SECURITY.md): they may archive it and
// remove its members, from the dashboard, without reading it.
func (h *Hub) AccessTo(ctx context.Context, id Identity, r db.Room) (Access, error) {
	var a Access
	admin := id.Role == db.RoleAdmin
	if id.Guest() {
		a.See = r.Kind == db.KindOpen && r.Guests && !r.IsArchived() && h.GuestsMayRead()
	} else {
		mine, err := h.roomsOf(ctx, id.UserID)
		if err != nil {
			return Access{}, err
		}
		a.Member = mine.has(r.ID)
		a.See = a.Member || r.Kind == db.KindOpen
		a.Join = !a.Member && r.Kind == db.KindOpen && !r.IsArchived()
		a.Manage = admin || r.Kind != db.KindDirect && r.CreatedBy == id.UserID
		a.Invite = !r.IsArchived() && r.Kind != db.KindDirect && (a.Member || admin)
		if id.Role == db.RoleBot {
			// A bot sees its granted rooms only, open ones too, and
			// changes no room.
			a.See, a.Join, a.Manage, a.Invite = a.Member, false, false, false
		}
	}
	switch {
	case !a.See:
		a.Why = ErrNoRoom
	case r.IsArchived():
		a.Why = ErrArchived
	case r.Post == db.PostAdmins && !admin:
		a.Why = errPostAdmins
	case r.Post == db.PostMembers && !a.Member, !id.Guest() && !a.Member:
		// An account posts where it is a member: its socket carries its
		// rooms only, so a room it has not joined it would not hear back.
		a.Why = errPostMembers
	case id.Guest():
		a.Why = h.mayGuestSend()
	}
	a.Post = a.Why == nil
	return a, nil
}

// mayPost is AccessTo's Post for a connection, from what it holds: its
// rooms and its role.
func (h *Hub) mayPost(c *client, room int64) error {
	r, ok := h.Room(room)
	if !ok || !c.sees(room) {
		return ErrNoRoom
	}
	// An account's connection sees its account's rooms (echo-protocol: the
	// default room, which every account is in); a guest is in none.
	member := c.userID != 0
	switch {
	case r.IsArchived():
		return ErrArchived
	case r.Post == db.PostAdmins && c.roleNow() != db.RoleAdmin:
		return errPostAdmins
	case r.Post == db.PostMembers && !member:
		return errPostMembers
	}
	return nil
}

// RoomView is a room as one person sees it in their list.
type RoomView struct {
	db.Room
	// Title is what the list shows: the name, or for a direct room the
	// other people's names.
	Title    string      `json:"title"`
	People   []db.Member `json:"people,omitempty"` // a direct room's people
	Member   bool        `json:"member"`
	Unread   int         `json:"unread"`
	Mention  bool        `json:"mention"`
	LastRead int64       `json:"last_read"`
	// Notify is what of the room its member is told of while away
	// (db.NotifyAll, NotifyMentions, NotifyNone); absent when not a member.
	Notify string `json:"notify,omitempty"`
}

// Rooms lists id's rooms: for an account, the rooms it is in (archived
// ones left out) with its unread counts, then the open rooms it may join
// (Member false); for a guest, the open rooms guests may use.
func (h *Hub) Rooms(ctx context.Context, id Identity) ([]RoomView, error) {
	var mine roomSet
	var unread map[int64]db.Unread
	if id.Guest() {
		mine = h.guestRooms()
	} else {
		var err error
		if mine, err = h.roomsOf(ctx, id.UserID); err != nil {
			return nil, err
		}
		if unread, err = h.store.UnreadOf(ctx, id.UserID); err != nil {
			return nil, err
		}
	}
	h.dir.mu.RLock()
	var out []RoomView
	for _, r := range h.dir.rooms {
		member := mine.has(r.ID)
		if r.IsArchived() || !member && (id.Guest() || id.Role == db.RoleBot || r.Kind != db.KindOpen) {
			continue
		}
		u := unread[r.ID]
		out = append(out, RoomView{Room: r, Title: r.Name, Member: member && !id.Guest(), Unread: u.Count, Mention: u.Mention, LastRead: u.LastRead, Notify: u.Notify})
	}
	h.dir.mu.RUnlock()
	for i, v := range out {
		if v.Kind != db.KindDirect {
			continue
		}
		people, err := h.store.Members(ctx, v.ID)
		if err != nil {
			return nil, err
		}
		out[i].People, out[i].Title = people, directTitle(people, id.UserID)
	}
	// The default room first, then the person's rooms, then the open rooms
	// to join; by title within each.
	rank := func(v RoomView) int {
		switch {
		case v.ID == db.DefaultRoom:
			return 0
		case v.Member:
			return 1
		}
		return 2
	}
	slices.SortFunc(out, func(a, b RoomView) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title)))
	})
	return out, nil
}

// directTitle names a direct room by its other people ("you" alone: a
// note to oneself).
func directTitle(people []db.Member, me int64) string {
	var names []string
	for _, p := range people {
		if p.UserID != me {
			names = append(names, p.User)
		}
	}
	if len(names) == 0 {
		return "Notes to self"
	}
	return strings.Join(names, ", ")
}

// Limits of rooms.
const (
	maxRoomName     = 64     // characters
	maxRoomTopic    = 256    // characters
	maxDirectPeople = 16     // people in one direct room, with its creator
	maxInvited      = 50     // people named when a room is created
	maxRooms        = 10_000 // rooms on the server, archived ones too
)

// errTooManyRooms refuses a room past maxRooms.
var errTooManyRooms = &Refusal{"forbidden", fmt.Sprintf("this server has its most rooms (%d): archive or reuse one", maxRooms)}

// NewRoom is what a person asks for when they create a room.
type NewRoom struct {
	Name    string
	Kind    string   // db.KindOpen, db.KindPrivate or db.KindDirect
	Members []string // names of the people to add (a direct room's people)
	Topic   string
	Post    string // db.PostEveryone (the default), PostMembers or PostAdmins
	Guests  bool   // open rooms only
}

// CreateRoom creates a room for id, with id in it, and tells everyone who
// sees it. For a direct room, the same people always get the same room:
// created is false when they had one already.
func (h *Hub) CreateRoom(ctx context.Context, id Identity, nr NewRoom) (_ RoomView, created bool, err error) {
	if id.Guest() {
		return RoomView{}, false, errGuestRooms
	}
	if id.Role == db.RoleBot {
		return RoomView{}, false, ErrBotRooms
	}
	r := db.Room{Kind: nr.Kind, Post: cmp.Or(nr.Post, db.PostEveryone), Guests: nr.Guests, CreatedBy: id.UserID}
	if r.Kind == db.KindDirect {
		r.Post = db.PostEveryone // a conversation's people all speak in it
	}
	switch r.Kind {
	case db.KindOpen, db.KindPrivate, db.KindDirect:
	default:
		return RoomView{}, false, &Refusal{"bad_request", "kind must be open, private or direct"}
	}
	switch r.Post {
	case db.PostEveryone, db.PostMembers:
	case db.PostAdmins:
		if id.Role != db.RoleAdmin {
			return RoomView{}, false, &Refusal{"forbidden", "only admins may make a room where only admins post"}
		}
	default:
		return RoomView{}, false, &Refusal{"bad_request", "post must be everyone, members or admins"}
	}
	if r.Guests && r.Kind != db.KindOpen {
		return RoomView{}, false, &Refusal{"bad_request", "only open rooms may let guests in"}
	}
	if len(nr.Members) > maxInvited {
		return RoomView{}, false, &Refusal{"bad_request", fmt.Sprintf("at most %d people may be named at once", maxInvited)}
	}
	h.dir.mu.RLock()
	full := len(h.dir.rooms) >= maxRooms
	h.dir.mu.RUnlock()
	if full {
		return RoomView{}, false, errTooManyRooms
	}
	release := func() {} // of h.naming, taken for a room with a name
	members := []int64{id.UserID}
	for _, name := range nr.Members {
		// A direct message to a bot is how one talks to it (its outgoing
		// webhook hears of each): a bot may be in direct rooms people
		// start with it, beside the rooms an admin grants it.
		a, err := h.accountNamed(ctx, name, r.Kind == db.KindDirect)
		if err != nil {
			return RoomView{}, false, err
		}
		members = append(members, a.ID)
	}
	people := uniq(members) // the creator named twice, or named in members, is one person
	if r.Kind == db.KindDirect {
		if len(people) > maxDirectPeople {
			return RoomView{}, false, &Refusal{"bad_request", fmt.Sprintf("a direct conversation has at most %d people", maxDirectPeople)}
		}
		r.Post, r.Slug = db.PostEveryone, "dm-"+newID()[:12]
	} else {
		if r.Name, err = cleanRoomName(nr.Name); err != nil {
			return RoomView{}, false, err
		}
		if release, err = h.holdNaming(ctx); err != nil {
			return RoomView{}, false, err
		}
		defer release()
		if err := h.nameFree(ctx, id, r.Name, 0); err != nil {
			return RoomView{}, false, err
		}
		if r.Topic, err = cleanTopic(nr.Topic); err != nil {
			return RoomView{}, false, err
		}
	}
	// Each person's rooms are read before the store has the room, as Join
	// and Invite do: setMember changes only lists read already, so a first
	// read racing the creation would keep a list from before it.
	for _, m := range people {
		if _, err := h.roomsOf(ctx, m); err != nil {
			return RoomView{}, false, err
		}
	}
	for try := 0; ; try++ {
		if r.Kind != db.KindDirect {
			r.Slug = slugOf(r.Name, try)
		}
		var stored db.Room
		stored, created, err = h.store.CreateRoom(ctx, r, people)
		if errors.Is(err, db.ErrSlugTaken) && try < 20 {
			if r.Kind == db.KindDirect {
				r.Slug = "dm-" + newID()[:12]
			}
			continue
		}
		if err != nil {
			return RoomView{}, false, fmt.Errorf("%w (%w)", ErrRoomStore, err)
		}
		r = stored
		break
	}
	if created {
		h.roomStored(func() {
			h.dir.mu.Lock()
			h.dir.rooms[r.ID], h.dir.bySlug[r.Slug] = r, r.ID
			h.dir.mu.Unlock()
			h.b.sendWait(opRoom{room: r, event: "created"})
			for _, m := range people {
				h.setMember(m, r.ID, true)
			}
		})
		release() // in the directory under its name
	} else if err := h.rejoinDirect(ctx, id, r); err != nil {
		return RoomView{}, false, err
	}
	v, err := h.view(ctx, id, r)
	return v, created, err
}

// rejoinDirect puts id back in the direct room its people already had,
// if id left it: starting the conversation again is how one gets it back.
// Only the one who asks is put back; the others who left stay out.
func (h *Hub) rejoinDirect(ctx context.Context, id Identity, r db.Room) error {
	mine, err := h.roomsOf(ctx, id.UserID)
	if err != nil || mine.has(r.ID) {
		return err
	}
	if err := h.store.AddMember(ctx, r.ID, id.UserID); err != nil {
		return fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	h.memberChanged(id.UserID, r.ID, true)
	return nil
}

func uniq(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// view is r as id sees it in their list.
func (h *Hub) view(ctx context.Context, id Identity, r db.Room) (RoomView, error) {
	rooms, err := h.Rooms(ctx, id)
	if err != nil {
		return RoomView{}, err
	}
	for _, v := range rooms {
		if v.ID == r.ID {
			return v, nil
		}
	}
	return RoomView{Room: r, Title: r.Name}, nil
}

// accountNamed finds the account a person named, by the names' rule; a
// bot's only if bots is set.
func (h *Hub) accountNamed(ctx context.Context, name string, bots bool) (db.Account, error) {
	notFound := &Refusal{"not_found", "no one is called " + quote(name)}
	key, err := NameKey(strings.TrimSpace(name))
	if err != nil {
		return db.Account{}, notFound
	}
	a, err := h.store.AccountByNameKey(ctx, key)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return db.Account{}, notFound
	case err != nil:
		return db.Account{}, fmt.Errorf("%w (%w)", ErrRoomStore, err)
	case a.Deactivated:
		return db.Account{}, notFound
	case a.Role == db.RoleBot && !bots:
		return db.Account{}, ErrBotRooms
	}
	return a, nil
}

// nameFree refuses name for a room (other than the room except) when a
// room id sees has it already, as people tell names apart: "Laser cutter"
// and "Laser  Cutter" would be two rooms nobody could tell apart in a
// list. Archived rooms and direct conversations do not count, nor private
// rooms id is not in: their names are not to be learned this way.
//
// The caller holds h.naming (holdNaming) until the room is in h.dir under
// its name, so that two people naming rooms alike at the same moment do not
// both get theirs. That holds on one node; nodes of a cluster each check
// their own copy of the rooms, so two of them may give one name at the
// same moment (this keeps a list clear, it does not guard data).
func (h *Hub) nameFree(ctx context.Context, id Identity, name string, except int64) error {
	mine, err := h.roomsOf(ctx, id.UserID)
	if err != nil {
		return err
	}
	key := roomNameKey(name)
	h.dir.mu.RLock()
	defer h.dir.mu.RUnlock()
	for _, r := range h.dir.rooms {
		switch {
		case r.ID == except, r.Kind == db.KindDirect, r.IsArchived(), r.Kind != db.KindOpen && !mine.has(r.ID):
		case roomNameKey(r.Name) == key:
			return &Refusal{"name_taken", fmt.Sprintf("there is a room called “%s” already: give this one another name", r.Name)}
		}
	}
	return nil
}

// holdNaming takes h.naming, waiting at most as long as ctx lives (a
// create or rename held up behind a slow write gives up with its request).
// release may be called more than once.
func (h *Hub) holdNaming(ctx context.Context) (release func(), err error) {
	select {
	case h.naming <- struct{}{}:
		return sync.OnceFunc(func() { <-h.naming }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// roomNameKey is what two rooms' names are compared by: case, width and
// runs of spaces aside.
func roomNameKey(name string) string {
	return cases.Fold().String(norm.NFKC.String(strings.Join(strings.Fields(name), " ")))
}

func cleanRoomName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	switch n := len([]rune(name)); {
	case n == 0:
		return "", &Refusal{"bad_request", "a room needs a name"}
	case n > maxRoomName:
		return "", &Refusal{"too_long", fmt.Sprintf("a room's name is at most %d characters", maxRoomName)}
	}
	if r, ok := unseen(name); ok {
		return "", &Refusal{"bad_request", "a room's name may not contain " + fmt.Sprintf("U+%04X", r)}
	}
	return name, nil
}

func cleanTopic(topic string) (string, error) {
	topic = strings.Join(strings.Fields(topic), " ")
	if len([]rune(topic)) > maxRoomTopic {
		return "", &Refusal{"too_long", fmt.Sprintf("a topic is at most %d characters", maxRoomTopic)}
	}
	if r, ok := unseen(topic); ok {
		return "", &Refusal{"bad_request", "a topic may not contain " + fmt.Sprintf("U+%04X", r)}
	}
	return topic, nil
}

// unseen finds a character a room's name or topic may not have: a control
// character, or one a name may not have (invisible, bidi controls).
func unseen(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) {
			return r, true
		}
	}
	if r, i := invisibleInName(s); i >= 0 {
		return r, true
	}
	return 0, false
}

// slugOf makes a room's address from its name: small letters, digits and
// dashes ("3D printers!" is 3d-printers); a name with none of those is
// "room"; try > 0 adds -2, -3... for a slug another room has, and past
// slugNumbered tries a random suffix: many rooms may share a name
// ("General"), and the tries are bounded.
func slugOf(name string, try int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	slug := b.String()
	if slug == "" {
		slug = "room"
	}
	switch {
	case try >= slugNumbered:
		slug += "-" + newID()[:6]
	case try > 0:
		slug += "-" + strconv.Itoa(try+1)
	}
	return slug
}

// slugNumbered is how many slugs slugOf numbers before it picks random
// ones: room, room-2 ... room-10, then room-3f9a0c.
const slugNumbered = 10

// memberChanged tells the directory and the broadcaster that user joined
// (in) or left room, after the store has it.
func (h *Hub) memberChanged(user, room int64, in bool) {
	h.roomStored(func() { h.setMember(user, room, in) })
}

// setMember puts user in room (in) or takes them out, in the directory
// and on the broadcaster.
func (h *Hub) setMember(user, room int64, in bool) {
	h.dir.setMember(user, room, in)
	h.b.sendWait(opMembership{user: user, room: room, in: in})
}

// roomStored is what follows a change to rooms or their people once the
// store has it: on a single node, apply them to the directory and tell
// the pages. On a cluster the log's copy of the change did that already,
// on this node as on the others, in the log's order (so that two changes
// made through two nodes at once end alike everywhere); roomStored then
// waits until the broadcaster got to it, so the caller finds it done.
func (h *Hub) roomStored(apply func()) {
	if h.opts.Stream != nil {
		h.b.read(func() {})
		return
	}
	apply()
}

// Join makes an open room one of id's rooms.
func (h *Hub) Join(ctx context.Context, id Identity, r db.Room) error {
	a, err := h.AccessTo(ctx, id, r)
	switch {
	case err != nil:
		return err
	case id.Guest():
		return errGuestRooms
	case id.Role == db.RoleBot:
		return ErrBotRooms
	case !a.See:
		return ErrNoRoom
	case a.Member:
		return nil
	case r.IsArchived():
		return ErrArchived
	case !a.Join:
		return errNotOpen
	}
	if _, err := h.roomsOf(ctx, id.UserID); err != nil {
		return err
	}
	if err := h.store.AddMember(ctx, r.ID, id.UserID); err != nil {
		return fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	h.memberChanged(id.UserID, r.ID, true)
	return nil
}

// Invite adds the person called name to r, for id.
func (h *Hub) Invite(ctx context.Context, id Identity, r db.Room, name string) (db.Account, error) {
	a, err := h.AccessTo(ctx, id, r)
	switch {
	case err != nil:
		return db.Account{}, err
	case !a.See:
		return db.Account{}, ErrNoRoom
	case r.Kind == db.KindDirect:
		return db.Account{}, errDirectFixed
	case r.IsArchived():
		return db.Account{}, ErrArchived
	case !a.Invite:
		return db.Account{}, errNotInviter
	}
	who, err := h.accountNamed(ctx, name, false)
	if err != nil {
		return db.Account{}, err
	}
	theirs, err := h.roomsOf(ctx, who.ID)
	if err != nil {
		return db.Account{}, err
	}
	if theirs.has(r.ID) {
		return who, nil // in it already: nothing changes, no one is told
	}
	if err := h.store.AddMember(ctx, r.ID, who.ID); err != nil {
		return db.Account{}, fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	h.memberChanged(who.ID, r.ID, true)
	return who, nil
}

// Leave takes r out of id's rooms.
func (h *Hub) Leave(ctx context.Context, id Identity, r db.Room) error {
	if id.Guest() {
		return errGuestRooms
	}
	if id.Role == db.RoleBot {
		return ErrBotRooms
	}
	if r.ID == db.DefaultRoom {
		return errLeaveDefault
	}
	return h.removeMember(ctx, r, id.UserID)
}

// RemoveMember takes an account out of a room, for an admin.
func (h *Hub) RemoveMember(ctx context.Context, id Identity, r db.Room, user int64) error {
	if id.Role != db.RoleAdmin {
		return errNotManager
	}
	if r.ID == db.DefaultRoom {
		return errLeaveDefault
	}
	return h.removeMember(ctx, r, user)
}

// errNotMember refuses to take out of a room someone who is not in it.
var errNotMember = &Refusal{"not_found", "they are not in this room"}

func (h *Hub) removeMember(ctx context.Context, r db.Room, user int64) error {
	theirs, err := h.roomsOf(ctx, user)
	if err != nil {
		return err
	}
	if !theirs.has(r.ID) {
		return errNotMember // told to no one: a "left" frame would be news of nothing
	}
	if err := h.store.RemoveMember(ctx, r.ID, user); err != nil {
		return fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	h.memberChanged(user, r.ID, false)
	return nil
}

// RoomChange is a change to a room's settings; nil fields stay.
type RoomChange struct {
	Name    *string
	Topic   *string
	Post    *string
	Guests  *bool
	Archive *bool
}

// ChangeRoom applies a change to r, for an admin or r's creator, and tells
// everyone who sees r.
func (h *Hub) ChangeRoom(ctx context.Context, id Identity, r db.Room, ch RoomChange) (db.Room, error) {
	a, err := h.AccessTo(ctx, id, r)
	if err != nil {
		return db.Room{}, err
	}
	if !a.Manage {
		return db.Room{}, errNotManager
	}
	if ch == (RoomChange{}) {
		return db.Room{}, &Refusal{"bad_request", "nothing to change: give name, topic, post, guests or archived"}
	}
	if r.Kind == db.KindDirect && (ch.Post != nil || ch.Guests != nil || ch.Name != nil) {
		return db.Room{}, &Refusal{"bad_request", "a direct conversation has no name and fixed rules: only its topic and archiving change"}
	}
	// Only what ch names changes: another admin's edit of another
	// setting meanwhile (perhaps through another node) holds.
	edit := db.RoomEdit{ID: r.ID, Guests: ch.Guests, Archive: ch.Archive}
	release := func() {} // of h.naming, taken for a new name or an unarchiving
	if ch.Name != nil {
		name, err := cleanRoomName(*ch.Name)
		if err != nil {
			return db.Room{}, err
		}
		if release, err = h.holdNaming(ctx); err != nil {
			return db.Room{}, err
		}
		defer release()
		if err := h.nameFree(ctx, id, name, r.ID); err != nil {
			return db.Room{}, err
		}
		edit.Name = &name
	}
	if ch.Topic != nil {
		topic, err := cleanTopic(*ch.Topic)
		if err != nil {
			return db.Room{}, err
		}
		edit.Topic = &topic
	}
	if ch.Post != nil {
		switch *ch.Post {
		case db.PostEveryone, db.PostMembers, db.PostAdmins:
		default:
			return db.Room{}, &Refusal{"bad_request", "post must be everyone, members or admins"}
		}
		if *ch.Post == db.PostAdmins && id.Role != db.RoleAdmin {
			return db.Room{}, &Refusal{"forbidden", "only admins may make a room where only admins post"}
		}
		edit.Post = ch.Post
	}
	if ch.Guests != nil && *ch.Guests && r.Kind != db.KindOpen {
		return db.Room{}, &Refusal{"bad_request", "only open rooms may let guests in"}
	}
	if ch.Archive != nil && *ch.Archive && r.ID == db.DefaultRoom {
		return db.Room{}, &Refusal{"forbidden", "the default room cannot be archived"}
	}
	if ch.Archive != nil && !*ch.Archive && edit.Name == nil {
		// Back in the lists, its name is checked as a new one is: another
		// room may have taken it meanwhile. The room as it is now, under
		// the lock: r is the caller's copy, from before another admin
		// renamed or archived it.
		if release, err = h.holdNaming(ctx); err != nil {
			return db.Room{}, err
		}
		defer release()
		if cur, ok := h.Room(r.ID); ok && cur.IsArchived() {
			if err := h.nameFree(ctx, id, cur.Name, r.ID); err != nil {
				return db.Room{}, err
			}
		}
	}
	changed, err := h.store.EditRoom(ctx, edit)
	if err != nil {
		return db.Room{}, fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	next, event := *changed.Room, "updated"
	if changed.Archived {
		event = "archived"
	}
	h.roomStored(func() {
		h.dir.mu.Lock()
		h.dir.rooms[next.ID] = next
		h.dir.mu.Unlock()
		h.b.sendWait(opRoom{room: next, event: event})
	})
	release() // in the directory under its name
	return next, nil
}
