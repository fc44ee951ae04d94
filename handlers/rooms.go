package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"nochat/chat"
	"nochat/db"
)

// The rooms' REST API. Every route reads who the request speaks for from
// its session cookie; a room the person may not see is 404, exactly as a
// room that does not exist, so that private rooms are not revealed.
//
//	GET    /rooms[?include=open]                  mine (and open ones to join)
//	POST   /rooms                                 create {name, kind, members, topic, post, guests}
//	GET    /rooms/{slug}                          one room, with its members
//	PATCH  /rooms/{slug}                          change {name, topic, post, guests, archived}: admin or creator
//	POST   /rooms/{slug}/join                     join an open room
//	POST   /rooms/{slug}/leave                    leave it
//	POST   /rooms/{slug}/members                  invite {user}: a member, or an admin
//	DELETE /rooms/{slug}/members/{id}             remove: an admin (or oneself)
//	PUT    /rooms/{slug}/notify                   {level: all|mentions|none}: a member (push.go)
//	GET    /rooms/{slug}/messages/latest/{n}      newest n, oldest first
//	GET    /rooms/{slug}/messages?before=&limit=  a page of history
//	GET    /rooms/{slug}/messages?around=&limit=  the history around a message (a permalink's)
//	GET    /search?q=&room=&from=&before=&after=  search the rooms one sees (search.go)
//	POST   /rooms/{slug}/messages                 send {message, reply_to}, Idempotency-Key as on /discussion
//	GET    /rooms/{slug}/messages/{id}            one message, as it is now
//	PATCH  /rooms/{slug}/messages/{id}            edit {message}: its author, within the edit window
//	DELETE /rooms/{slug}/messages/{id}            delete: its author, the room's creator, an admin
//	POST   /rooms/{slug}/messages/{id}/reactions  react {emoji, on}: on absent toggles; an account in the room

// roomHub is what the rooms' routes need of the hub.
type roomHub interface {
	Rooms(ctx context.Context, id chat.Identity) ([]chat.RoomView, error)
	RoomBySlug(slug string) (db.Room, bool)
	AccessTo(ctx context.Context, id chat.Identity, r db.Room) (chat.Access, error)
	CatchUp(ctx context.Context) bool
	CreateRoom(ctx context.Context, id chat.Identity, nr chat.NewRoom) (chat.RoomView, bool, error)
	ChangeRoom(ctx context.Context, id chat.Identity, r db.Room, ch chat.RoomChange) (db.Room, error)
	Join(ctx context.Context, id chat.Identity, r db.Room) error
	Leave(ctx context.Context, id chat.Identity, r db.Room) error
	Invite(ctx context.Context, id chat.Identity, r db.Room, name string) (db.Account, error)
	RemoveMember(ctx context.Context, id chat.Identity, r db.Room, user int64) error
	Reply(ctx context.Context, id chat.Identity, r db.Room, user, text, key string, replyTo int64) (db.Stored, error)
	Change(ctx context.Context, id chat.Identity, req chat.ChangeRequest) (db.Message, error)
	SetNotify(ctx context.Context, id chat.Identity, r db.Room, level string) error
	GuestsMayRead() bool
}

type roomStore interface {
	historyReader // BeforeIn too
	AfterIn(ctx context.Context, room, id int64, limit int) ([]db.Message, error)
	Get(ctx context.Context, id int64) (db.Message, error)
	Members(ctx context.Context, room int64) ([]db.Member, error)
}

// addRoomRoutes adds the rooms' API. Reads follow the guest policy; every
// change needs an account (the hub refuses guests) and comes as JSON
// from an allowed origin (guardJSON), so another site's form cannot post it.
func addRoomRoutes(mux *http.ServeMux, d Deps, guard *sendGuard, heavy *answerSlots) {
	rooms := &roomRoutes{log: d.Log, hub: d.Hub, store: d.Store, who: d.Auth}
	read := func(h http.HandlerFunc) http.Handler {
		return membersRead(d.Log, d.Hub, d.Auth, h)
	}
	change := guardJSON(d)
	// Creating, inviting, joining...: a person's bursts, not a script's.
	limited := limitRoomChanges(d, chat.NewKeyedLimiter(rate.Every(roomChangeEvery), roomChangeBurst))
	mux.Handle("GET /rooms", read(rooms.list))
	mux.Handle("POST /rooms", limited(change(rooms.create)))
	mux.Handle("GET /rooms/{slug}", read(rooms.show))
	mux.Handle("PATCH /rooms/{slug}", limited(change(rooms.change)))
	mux.Handle("POST /rooms/{slug}/join", limited(change(rooms.join)))
	mux.Handle("POST /rooms/{slug}/leave", limited(change(rooms.leave)))
	mux.Handle("POST /rooms/{slug}/members", limited(change(rooms.invite)))
	mux.Handle("DELETE /rooms/{slug}/members/{id}", limited(change(rooms.remove)))
	mux.Handle("PUT /rooms/{slug}/notify", limited(change(rooms.notify))) // push.go
	mux.Handle("GET /rooms/{slug}/messages/latest/{n}", heavy.bound(d.Log, read(rooms.latest)))
	mux.Handle("GET /rooms/{slug}/messages", heavy.bound(d.Log, read(rooms.history)))
	mux.Handle("GET /search", limitSearches(d)(membersRead(d.Log, d.Hub, d.Auth, handleSearch(d.Log, d.Hub, d.Store, d.Auth))))
	mux.Handle("POST /rooms/{slug}/messages", guard.sends(change(rooms.send)))
	mux.Handle("GET /rooms/{slug}/messages/{id}", read(rooms.one))
	// Changes to messages count against the sender's limit, as sends do.
	mux.Handle("PATCH /rooms/{slug}/messages/{id}", guard.changes(change(rooms.edit)))
	mux.Handle("DELETE /rooms/{slug}/messages/{id}", guard.changes(change(rooms.delete)))
	mux.Handle("POST /rooms/{slug}/messages/{id}/reactions", guard.changes(change(rooms.react)))
}

// Room changes per person (or, for a guest, per address): a burst of
// roomChangeBurst, then one every roomChangeEvery.
const (
	roomChangeEvery = 2 * time.Second
	roomChangeBurst = 20
)

var errRoomChangesLimited = errors.New("too many room changes at once: wait a moment and try again")

// limitRoomChanges refuses, with 429, changes past the limiter's rate.
func limitRoomChanges(d Deps, limiter *chat.KeyedLimiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := "ip " + chat.AddressKey(chat.ClientIP(r, d.TrustProxy)) // an IPv6 /64 is one address
			if id := d.Auth.Identity(r); !id.Guest() {
				key = "account " + strconv.FormatInt(id.UserID, 10)
			}
			if !limiter.Allow(key) {
				w.Header().Set("Retry-After", strconv.Itoa(int(roomChangeEvery/time.Second)))
				writeError(w, r, d.Log, http.StatusTooManyRequests, errRoomChangesLimited)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// guardJSON refuses a change that is not JSON from an allowed origin: a
// cross-site form can post neither.
func guardJSON(d Deps) func(http.HandlerFunc) http.Handler {
	return func(next http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !chat.OriginAllowed(r, d.AllowOrigins) {
				writeError(w, r, d.Log, http.StatusForbidden, errCrossOrigin)
				return
			}
			if r.Method != http.MethodDelete && !isJSON(r) {
				writeError(w, r, d.Log, http.StatusUnsupportedMediaType, errors.New("send JSON (Content-Type: application/json)"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func isJSON(r *http.Request) bool {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

type roomRoutes struct {
	log   *slog.Logger
	hub   roomHub
	store roomStore
	who   identifier
}

var errNoRoom = errors.New(chat.ErrNoRoom.Text)

// room finds the request's room and what its person may do there; a room
// they may not see is answered 404, as one that does not exist.
func (rr *roomRoutes) room(w http.ResponseWriter, r *http.Request) (db.Room, chat.Identity, chat.Access, bool) {
	id := rr.who.Identity(r)
	room, a, ok, err := lookUpRoom(r.Context(), rr.hub, id, r.PathValue("slug"))
	if !ok {
		writeError(w, r, rr.log, http.StatusNotFound, errNoRoom)
		return db.Room{}, id, chat.Access{}, false
	}
	if err != nil {
		writeError(w, r, rr.log, http.StatusServiceUnavailable, err)
		return db.Room{}, id, chat.Access{}, false
	}
	if !a.See {
		writeError(w, r, rr.log, http.StatusNotFound, errNoRoom)
		return db.Room{}, id, chat.Access{}, false
	}
	return room, id, a, true
}

// roomFinder is what lookUpRoom needs of the hub.
type roomFinder interface {
	RoomBySlug(slug string) (db.Room, bool)
	AccessTo(ctx context.Context, id chat.Identity, r db.Room) (chat.Access, error)
	CatchUp(ctx context.Context) bool
}

// lookUpRoom is the room with slug and what id may do there. On a cluster,
// a room not found, or not one of a signed-in person's rooms, may have
// been made or joined through another node a moment ago: it looks again
// once this node has caught up with the log.
func lookUpRoom(ctx context.Context, hub roomFinder, id chat.Identity, slug string) (db.Room, chat.Access, bool, error) {
	look := func() (db.Room, chat.Access, bool, error) {
		room, ok := hub.RoomBySlug(slug)
		if !ok {
			return db.Room{}, chat.Access{}, false, nil
		}
		a, err := hub.AccessTo(ctx, id, room)
		return room, a, true, err
	}
	room, a, ok, err := look()
	if err == nil && (!ok || !a.See || !id.Guest() && !a.Member) && hub.CatchUp(ctx) {
		room, a, ok, err = look()
	}
	return room, a, ok, err
}

// list is GET /rooms: the person's rooms; with ?include=open, the open
// rooms they may join too (member false), as the page's sidebar shows.
func (rr *roomRoutes) list(w http.ResponseWriter, r *http.Request) {
	include, _, err := singleQuery(r, "include")
	if err != nil || include != "" && include != "open" {
		writeError(w, r, rr.log, http.StatusBadRequest, errors.New("include must be open, or absent"))
		return
	}
	id := rr.who.Identity(r)
	rooms, err := rr.hub.Rooms(r.Context(), id)
	if err != nil {
		writeError(w, r, rr.log, http.StatusServiceUnavailable, err)
		return
	}
	mine := make([]chat.RoomView, 0, len(rooms))
	for _, v := range rooms {
		// A guest's rooms are the open ones that let guests in.
		if v.Member || id.Guest() || include == "open" {
			mine = append(mine, v)
		}
	}
	encode(w, http.StatusOK, mine)
}

// roomDetail is GET /rooms/{slug}: the room, what the asker may do, and
// its members.
type roomDetail struct {
	db.Room
	Member  bool        `json:"member"`
	MayPost bool        `json:"may_post"`
	Manage  bool        `json:"manage"`
	Invite  bool        `json:"invite"`
	People  []db.Member `json:"people"`
}

func (rr *roomRoutes) show(w http.ResponseWriter, r *http.Request) {
	room, _, a, ok := rr.room(w, r)
	if !ok {
		return
	}
	people, err := rr.store.Members(r.Context(), room.ID)
	if err != nil {
		writeError(w, r, rr.log, http.StatusServiceUnavailable, err)
		return
	}
	if people == nil {
		people = []db.Member{}
	}
	encode(w, http.StatusOK, roomDetail{Room: room, Member: a.Member, MayPost: a.Post, Manage: a.Manage, Invite: a.Invite, People: people})
}

type createBody struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Members []string `json:"members"`
	Topic   string   `json:"topic"`
	Post    string   `json:"post"`
	Guests  bool     `json:"guests"`
}

func (rr *roomRoutes) create(w http.ResponseWriter, r *http.Request) {
	var body createBody
	if err := readJSON(w, r, &body, `{"name": string, "kind": "open"|"private"|"direct", "members": [names]}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	v, created, err := rr.hub.CreateRoom(r.Context(), rr.who.Identity(r), chat.NewRoom{
		Name: body.Name, Kind: body.Kind, Members: body.Members, Topic: body.Topic, Post: body.Post, Guests: body.Guests,
	})
	if err != nil {
		writeError(w, r, rr.log, sendStatus(err), err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // the direct room these people have
	}
	w.Header().Set("Location", "/r/"+v.Slug)
	encode(w, status, v)
}

type changeBody struct {
	Name     *string `json:"name"`
	Topic    *string `json:"topic"`
	Post     *string `json:"post"`
	Guests   *bool   `json:"guests"`
	Archived *bool   `json:"archived"`
}

func (rr *roomRoutes) change(w http.ResponseWriter, r *http.Request) {
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	var body changeBody
	if err := readJSON(w, r, &body, `{"name", "topic", "post", "guests", "archived"}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	next, err := rr.hub.ChangeRoom(r.Context(), id, room, chat.RoomChange{
		Name: body.Name, Topic: body.Topic, Post: body.Post, Guests: body.Guests, Archive: body.Archived,
	})
	if err != nil {
		writeError(w, r, rr.log, sendStatus(err), err)
		return
	}
	encode(w, http.StatusOK, next)
}

func (rr *roomRoutes) join(w http.ResponseWriter, r *http.Request) {
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	rr.done(w, r, rr.hub.Join(r.Context(), id, room))
}

// done answers a change with no body: 204, or the refusal.
func (rr *roomRoutes) done(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		writeError(w, r, rr.log, sendStatus(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rr *roomRoutes) leave(w http.ResponseWriter, r *http.Request) {
	room, id, a, ok := rr.room(w, r)
	if !ok {
		return
	}
	if !a.Member && !id.Guest() { // a guest is told to sign in, by Leave
		writeError(w, r, rr.log, http.StatusConflict, errors.New("you are not in this room"))
		return
	}
	rr.done(w, r, rr.hub.Leave(r.Context(), id, room))
}

type inviteBody struct {
	User string `json:"user"`
}

func (rr *roomRoutes) invite(w http.ResponseWriter, r *http.Request) {
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	var body inviteBody
	if err := readJSON(w, r, &body, `{"user": name}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	who, err := rr.hub.Invite(r.Context(), id, room, body.User)
	if err != nil {
		writeError(w, r, rr.log, sendStatus(err), err)
		return
	}
	encode(w, http.StatusCreated, db.Member{UserID: who.ID, User: who.Name, Role: who.Role})
}

func (rr *roomRoutes) remove(w http.ResponseWriter, r *http.Request) {
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	user, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || user < 1 {
		writeError(w, r, rr.log, http.StatusBadRequest, errors.New("id must be an account id"))
		return
	}
	if user == id.UserID {
		err = rr.hub.Leave(r.Context(), id, room)
	} else {
		err = rr.hub.RemoveMember(r.Context(), id, room, user)
	}
	rr.done(w, r, err)
}

func (rr *roomRoutes) latest(w http.ResponseWriter, r *http.Request) {
	room, _, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	n, err := parseCount("n", r.PathValue("n"))
	if err != nil {
		writeError(w, r, rr.log, http.StatusBadRequest, err)
		return
	}
	writeHistory(w, r, rr.log, rr.store, room.ID, 0, n)
}

func (rr *roomRoutes) history(w http.ResponseWriter, r *http.Request) {
	room, _, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	if v, ok, err := singleQuery(r, "around"); err != nil || ok {
		if err == nil {
			err = rr.around(w, r, room, v)
		}
		if err != nil {
			writeError(w, r, rr.log, http.StatusBadRequest, err)
		}
		return
	}
	handleHistory(rr.log, rr.store, room.ID).ServeHTTP(w, r)
}

type roomSendBody struct {
	Message *string `json:"message"`
	ReplyTo int64   `json:"reply_to"`
}

func (rr *roomRoutes) send(w http.ResponseWriter, r *http.Request) {
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, r, rr.log, http.StatusBadRequest, err)
		return
	}
	var body roomSendBody
	if err := readJSON(w, r, &body, `{"message": string, "reply_to": message id (optional)}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	if body.Message == nil {
		writeError(w, r, rr.log, http.StatusBadRequest, errors.New("message is missing"))
		return
	}
	st, err := rr.hub.Reply(r.Context(), id, room, chat.DefaultUser, *body.Message, key, body.ReplyTo)
	if err != nil {
		if errors.Is(err, chat.ErrCIDReused) {
			writeError(w, r, rr.log, http.StatusUnprocessableEntity, errKeyReused)
			return
		}
		writeError(w, r, rr.log, sendStatus(err), err)
		return
	}
	markReplay(w, st)
	encode(w, http.StatusCreated, message(st.Message))
}

// around answers ?around=ID: the message and up to limit/2 (default
// pageSize/2) messages either side, oldest first. A message that is not
// the room's is 404, as one that does not exist.
func (rr *roomRoutes) around(w http.ResponseWriter, r *http.Request, room db.Room, v string) error {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return errors.New("around must be a message id (a whole number, 1 or more)")
	}
	limit := pageSize
	if v, ok, err := singleQuery(r, "limit"); err != nil {
		return err
	} else if ok {
		if limit, err = parseCount("limit", v); err != nil {
			return err
		}
	}
	msgs, _, _, err := aroundIn(r.Context(), rr.store, room.ID, id, max(1, limit/2))
	switch {
	case errors.Is(err, db.ErrNotFound):
		writeError(w, r, rr.log, http.StatusNotFound, errNoMessage)
	case err != nil:
		writeError(w, r, rr.log, http.StatusInternalServerError, err)
	default:
		encodeMessages(w, http.StatusOK, msgs)
	}
	return nil
}

var errNoMessage = errors.New(chat.ErrNoMessage.Text)

// aroundReader reads the history around a message.
type aroundReader interface {
	BeforeIn(ctx context.Context, room, id int64, limit int) ([]db.Message, error)
	AfterIn(ctx context.Context, room, id int64, limit int) ([]db.Message, error)
	Get(ctx context.Context, id int64) (db.Message, error)
}

// aroundIn returns message id of room with up to half messages before and
// after it, oldest first, and whether there are more either side; a
// message of another room (or none) is db.ErrNotFound, so that a
// permalink never says what another room holds.
func aroundIn(ctx context.Context, store aroundReader, room, id int64, half int) (msgs []db.Message, older, newer bool, err error) {
	m, err := store.Get(ctx, id)
	if err != nil {
		return nil, false, false, err
	}
	if m.Room != room {
		return nil, false, false, db.ErrNotFound
	}
	// One more each side, to know whether there are more.
	before, err := store.BeforeIn(ctx, room, id, half+1)
	if err != nil {
		return nil, false, false, err
	}
	after, err := store.AfterIn(ctx, room, id, half+1)
	if err != nil {
		return nil, false, false, err
	}
	if older = len(before) > half; older {
		before = before[1:]
	}
	if newer = len(after) > half; newer {
		after = after[:half]
	}
	msgs = append(append(before, m), after...)
	return msgs, older, newer, nil
}

// one is GET /rooms/{slug}/messages/{id}: the message as it is now, if it
// is in that room.
func (rr *roomRoutes) one(w http.ResponseWriter, r *http.Request) {
	room, _, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	id, ok := rr.messageID(w, r)
	if !ok {
		return
	}
	m, err := rr.store.Get(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) && rr.hub.CatchUp(r.Context()) {
		// Sent through another node a moment ago, perhaps.
		m, err = rr.store.Get(r.Context(), id)
	}
	switch {
	case err == nil && m.Room == room.ID:
		encode(w, http.StatusOK, message(m))
	case err == nil || errors.Is(err, db.ErrNotFound):
		writeError(w, r, rr.log, http.StatusNotFound, errNoMessage)
	default:
		writeError(w, r, rr.log, http.StatusInternalServerError, err)
	}
}

// messageID is the path's message id; one that cannot be a message's is
// answered 404, as a message that is not there.
func (rr *roomRoutes) messageID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, r, rr.log, http.StatusNotFound, errNoMessage)
		return 0, false
	}
	return id, true
}

type editBody struct {
	Message *string `json:"message"`
}

type reactBody struct {
	Emoji *string `json:"emoji"`
	On    *bool   `json:"on"`
}

func (rr *roomRoutes) edit(w http.ResponseWriter, r *http.Request) {
	var body editBody
	if err := readJSON(w, r, &body, `{"message": string}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	if body.Message == nil {
		writeError(w, r, rr.log, http.StatusBadRequest, errors.New("message is missing"))
		return
	}
	rr.changeMessage(w, r, chat.ChangeRequest{Kind: db.Edit, Text: *body.Message})
}

func (rr *roomRoutes) delete(w http.ResponseWriter, r *http.Request) {
	rr.changeMessage(w, r, chat.ChangeRequest{Kind: db.Delete})
}

func (rr *roomRoutes) react(w http.ResponseWriter, r *http.Request) {
	var body reactBody
	if err := readJSON(w, r, &body, `{"emoji": string, "on": bool (optional)}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	if body.Emoji == nil {
		writeError(w, r, rr.log, http.StatusBadRequest, errors.New("emoji is missing"))
		return
	}
	rr.changeMessage(w, r, chat.ChangeRequest{Kind: db.React, Text: *body.Emoji, On: body.On})
}

// changeMessage makes req to the message the path names, in the path's
// room, and answers the message as it is after it (204 for a deletion).
func (rr *roomRoutes) changeMessage(w http.ResponseWriter, r *http.Request, req chat.ChangeRequest) {
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	msg, ok := rr.messageID(w, r)
	if !ok {
		return
	}
	req.ID, req.Room = msg, room.ID
	m, err := rr.hub.Change(r.Context(), id, req)
	switch {
	case err != nil:
		writeError(w, r, rr.log, sendStatus(err), err)
	case req.Kind == db.Delete:
		w.WriteHeader(http.StatusNoContent)
	default:
		encode(w, http.StatusOK, message(m))
	}
}
