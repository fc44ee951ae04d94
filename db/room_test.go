package db_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

// Rooms: the default room, rooms made and changed, messages kept per room,
// read markers and unread counts, and the migration that brought them.

func memberAccount(t *testing.T, s *db.Store, name string) db.Account {
	t.Helper()
	return createAccount(t, s, name, strings.ToLower(name))
}

func createRoom(t *testing.T, s *db.Store, r db.Room, members ...int64) db.Room {
	t.Helper()
	got, created, err := s.CreateRoom(context.Background(), r, members)
	if err != nil {
		t.Fatalf("CreateRoom(%s): %v", r.Slug, err)
	}
	if !created || got.ID == 0 {
		t.Fatalf("CreateRoom(%s) = %+v, created %v; want a new room", r.Slug, got, created)
	}
	return got
}

func roomByID(t *testing.T, s *db.Store, id int64) db.Room {
	t.Helper()
	rooms, err := s.Rooms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rooms {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("room %d not in Rooms: %+v", id, rooms)
	return db.Room{}
}

func memberNames(t *testing.T, s *db.Store, room int64) []string {
	t.Helper()
	ms, err := s.Members(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.User)
	}
	return names
}

func ids(msgs []db.Message) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func TestFreshDatabaseHasTheLobbyWithEveryAccount(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	rooms, err := s.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms) != 1 {
		t.Fatalf("rooms of a fresh database = %+v, want the lobby alone", rooms)
	}
	lobby := rooms[0]
	if lobby.ID != 1 || lobby.Slug != "lobby" || lobby.Kind != db.KindOpen || !lobby.Guests || lobby.IsArchived() {
		t.Fatalf("lobby = %+v, want room 1 lobby, open, guests, not archived", lobby)
	}
	if lobby.Post != db.PostEveryone {
		t.Fatalf("lobby post = %q, want everyone", lobby.Post)
	}
	ann := memberAccount(t, s, "Ann")
	if got, err := s.Memberships(ctx, ann.ID); err != nil || !slices.Equal(got, []int64{1}) {
		t.Fatalf("Memberships of a new account = %v, %v; want [1]", got, err)
	}
	if got := memberNames(t, s, 1); !slices.Equal(got, []string{"Ann"}) {
		t.Fatalf("lobby members = %v, want [Ann]", got)
	}
}

func TestCreateRoom(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, bob, cy := memberAccount(t, s, "Ann"), memberAccount(t, s, "Bob"), memberAccount(t, s, "Cy")

	open := createRoom(t, s, db.Room{Slug: "general", Name: "General", Kind: db.KindOpen, Post: db.PostEveryone, CreatedBy: ann.ID}, ann.ID, bob.ID)
	private := createRoom(t, s, db.Room{Slug: "secret", Name: "Secret", Topic: "shh", Kind: db.KindPrivate, Post: db.PostMembers}, cy.ID)
	if open.ID == private.ID || open.ID == 1 || private.ID == 1 {
		t.Fatalf("room ids: open %d, private %d; want two new ids", open.ID, private.ID)
	}
	if got := roomByID(t, s, open.ID); got.Slug != "general" || got.Name != "General" || got.Kind != db.KindOpen || got.CreatedBy != ann.ID || got.Created == 0 {
		t.Fatalf("stored open room = %+v", got)
	}
	if got := roomByID(t, s, private.ID); got.Topic != "shh" || got.Kind != db.KindPrivate || got.Post != db.PostMembers || got.Guests {
		t.Fatalf("stored private room = %+v", got)
	}
	if got := memberNames(t, s, open.ID); !slices.Equal(got, []string{"Ann", "Bob"}) {
		t.Fatalf("general members = %v, want [Ann Bob]", got)
	}
	if got := memberNames(t, s, private.ID); !slices.Equal(got, []string{"Cy"}) {
		t.Fatalf("secret members = %v, want [Cy]", got)
	}
	if got, _ := s.Memberships(ctx, ann.ID); !slices.Equal(got, []int64{1, open.ID}) {
		t.Fatalf("Ann's memberships = %v, want [1 %d]", got, open.ID)
	}

	_, created, err := s.CreateRoom(ctx, db.Room{Slug: "general", Name: "Another", Kind: db.KindOpen, Post: db.PostEveryone}, []int64{cy.ID})
	if !errors.Is(err, db.ErrSlugTaken) || created {
		t.Fatalf("CreateRoom with a taken slug: created %v, err = %v; want ErrSlugTaken", created, err)
	}
	if got := memberNames(t, s, open.ID); !slices.Equal(got, []string{"Ann", "Bob"}) {
		t.Fatalf("general members after a refused create = %v, want [Ann Bob]", got)
	}
	if rooms, _ := s.Rooms(ctx); len(rooms) != 3 {
		t.Fatalf("rooms after a refused create = %+v, want 3", rooms)
	}

	dm := createRoom(t, s, db.Room{Slug: "dm-ann-bob", Name: "Ann, Bob", Kind: db.KindDirect, Post: db.PostMembers}, ann.ID, bob.ID)
	for _, people := range [][]int64{{bob.ID, ann.ID}, {ann.ID, bob.ID, ann.ID}, {bob.ID, bob.ID, ann.ID}} {
		again, created, err := s.CreateRoom(ctx, db.Room{Slug: fmt.Sprint("dm-again-", people), Name: "again", Kind: db.KindDirect, Post: db.PostMembers}, people)
		if err != nil {
			t.Fatalf("direct room of %v again: %v", people, err)
		}
		if created || again.ID != dm.ID || again.Slug != "dm-ann-bob" {
			t.Fatalf("direct room of %v = %+v, created %v; want room %d, not created", people, again, created, dm.ID)
		}
	}
	if got := memberNames(t, s, dm.ID); !slices.Equal(got, []string{"Ann", "Bob"}) {
		t.Fatalf("direct room members = %v, want [Ann Bob]", got)
	}
	other, created, err := s.CreateRoom(ctx, db.Room{Slug: "dm-ann-cy", Name: "Ann, Cy", Kind: db.KindDirect, Post: db.PostMembers}, []int64{cy.ID, ann.ID})
	if err != nil || !created || other.ID == dm.ID {
		t.Fatalf("direct room of Ann and Cy = %+v, created %v, %v; want another new room", other, created, err)
	}
	three, created, err := s.CreateRoom(ctx, db.Room{Slug: "dm-three", Name: "three", Kind: db.KindDirect, Post: db.PostMembers}, []int64{cy.ID, ann.ID, bob.ID})
	if err != nil || !created || three.ID == dm.ID || three.ID == other.ID {
		t.Fatalf("direct room of three = %+v, created %v, %v; want another new room", three, created, err)
	}
	if rooms, _ := s.Rooms(ctx); len(rooms) != 6 {
		t.Fatalf("rooms = %d, want 6: %+v", len(rooms), rooms)
	}
}

func TestMessagesAreKeptPerRoom(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	red := createRoom(t, s, db.Room{Slug: "red", Name: "Red", Kind: db.KindOpen, Post: db.PostEveryone})
	blue := createRoom(t, s, db.Room{Slug: "blue", Name: "Blue", Kind: db.KindOpen, Post: db.PostEveryone})

	var drafts []db.Draft
	rooms := []int64{0, red.ID, blue.ID, red.ID, db.DefaultRoom, blue.ID, red.ID, 0}
	for i, room := range rooms {
		drafts = append(drafts, db.Draft{User: "ann", Message: fmt.Sprint("m", i), Room: room})
	}
	stored, err := s.Insert(ctx, drafts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64][]int64{} // room: message ids
	for i, st := range stored {
		room := rooms[i]
		if room == 0 {
			room = db.DefaultRoom
		}
		if st.Message.Room != room {
			t.Fatalf("Insert said draft %d is in room %d, want %d", i, st.Message.Room, room)
		}
		want[room] = append(want[room], st.Message.ID)
	}

	for _, room := range []int64{db.DefaultRoom, red.ID, blue.ID} {
		got, err := s.LatestIn(ctx, room, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want[room]) {
			t.Fatalf("LatestIn(%d) = %v, want %v", room, ids(got), want[room])
		}
		for _, m := range got {
			if m.Room != room {
				t.Fatalf("LatestIn(%d) has %+v", room, m)
			}
		}
		if got, _ := s.LatestIn(ctx, room, 2); !slices.Equal(ids(got), want[room][len(want[room])-2:]) {
			t.Fatalf("LatestIn(%d, 2) = %v, want the last two of %v", room, ids(got), want[room])
		}
		last := want[room][len(want[room])-1]
		got, err = s.BeforeIn(ctx, room, last, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want[room][:len(want[room])-1]) {
			t.Fatalf("BeforeIn(%d, %d) = %v, want %v", room, last, ids(got), want[room][:len(want[room])-1])
		}
	}
	if got, _ := s.LatestIn(ctx, 999, 10); len(got) != 0 {
		t.Fatalf("LatestIn of no room = %v", ids(got))
	}

	latest, err := s.Latest(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(latest), want[db.DefaultRoom]) || texts(latest) != "m0,m4,m7" {
		t.Fatalf("Latest = %v (%s), want the default room's %v", ids(latest), texts(latest), want[db.DefaultRoom])
	}
	before, err := s.Before(ctx, stored[7].Message.ID, 100)
	if err != nil || texts(before) != "m0,m4" {
		t.Fatalf("Before = %s, %v; want m0,m4", texts(before), err)
	}

	all, err := s.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(stored) {
		t.Fatalf("After(0) = %d messages, want %d", len(all), len(stored))
	}
	for i, m := range all {
		if m.ID != stored[i].Message.ID || m.Message != fmt.Sprint("m", i) || m.Room != stored[i].Message.Room {
			t.Fatalf("After(0)[%d] = %+v, want %+v", i, m, stored[i].Message)
		}
	}
	if got, _ := s.After(ctx, stored[4].Message.ID, 2); texts(got) != "m5,m6" || got[0].Room != blue.ID || got[1].Room != red.ID {
		t.Fatalf("After(m4, 2) = %+v, want m5 (blue), m6 (red)", got)
	}
	if got, err := s.Get(ctx, stored[0].Message.ID); err != nil || got.Room != db.DefaultRoom {
		t.Fatalf("a draft of room 0 reads back as %+v, %v; want room 1", got, err)
	}
	if got, err := s.Get(ctx, stored[2].Message.ID); err != nil || got.Room != blue.ID {
		t.Fatalf("a draft of blue reads back as %+v, %v; want room %d", got, err, blue.ID)
	}
}

func unreadOf(t *testing.T, s *db.Store, a db.Account) map[int64]db.Unread {
	t.Helper()
	u, err := s.UnreadOf(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func say(t *testing.T, s *db.Store, room int64, from db.Account, texts ...string) []db.Message {
	t.Helper()
	return sayMentioning(t, s, room, from, nil, texts...)
}

// sayMentioning is say, each text mentioning the accounts mentioned (the
// hub finds them in the text: chat.FindMentions).
func sayMentioning(t *testing.T, s *db.Store, room int64, from db.Account, mentioned []db.Account, texts ...string) []db.Message {
	t.Helper()
	var drafts []db.Draft
	for _, text := range texts {
		d := db.Draft{User: from.Name, UserID: from.ID, Message: text, Room: room}
		for _, a := range mentioned {
			d.Mentions = append(d.Mentions, db.Mention{UserID: a.ID, User: a.Name, Start: 0, Length: len(a.Name) + 1})
		}
		drafts = append(drafts, d)
	}
	stored, err := s.Insert(context.Background(), drafts)
	if err != nil {
		t.Fatal(err)
	}
	var out []db.Message
	for _, st := range stored {
		out = append(out, st.Message)
	}
	return out
}

func TestReadMarkersAndUnread(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	early := insert(t, s, "before anyone") // read by nobody, and no one's unread
	ann, bob := memberAccount(t, s, "Ann"), memberAccount(t, s, "Bob")
	room := createRoom(t, s, db.Room{Slug: "room", Name: "Room", Kind: db.KindPrivate, Post: db.PostMembers}, ann.ID, bob.ID)

	u := unreadOf(t, s, ann)
	if len(u) != 2 {
		t.Fatalf("Ann's unread = %+v, want her two rooms", u)
	}
	for _, r := range []int64{1, room.ID} {
		if u[r].Room != r || u[r].LastRead != early[0].ID || u[r].Count != 0 || u[r].Mention {
			t.Fatalf("Ann's unread in room %d = %+v, want nothing unread, read up to %d", r, u[r], early[0].ID)
		}
	}

	bobs := say(t, s, room.ID, bob, "hello", "how is it going")
	anns := sayMentioning(t, s, room.ID, ann, []db.Account{bob}, "@bob fine")
	say(t, s, 1, bob, "lobby talk")
	u = unreadOf(t, s, ann)
	if got := u[room.ID]; got.Count != 2 || got.Mention {
		t.Fatalf("Ann's unread in the room = %+v, want 2 (not her own), no mention", got)
	}
	if got := u[1]; got.Count != 1 || got.Mention {
		t.Fatalf("Ann's unread in the lobby = %+v, want 1", got)
	}
	if got := unreadOf(t, s, bob)[room.ID]; got.Count != 1 || !got.Mention {
		t.Fatalf("Bob's unread in the room = %+v, want Ann's one message, mentioning him", got)
	}

	// The marker moves up only.
	if moved, err := s.MarkRead(ctx, room.ID, ann.ID, bobs[1].ID); err != nil || !moved {
		t.Fatalf("MarkRead up = %v, %v; want moved", moved, err)
	}
	if moved, err := s.MarkRead(ctx, room.ID, ann.ID, bobs[0].ID); err != nil || moved {
		t.Fatalf("MarkRead down = %v, %v; want not moved", moved, err)
	}
	if moved, err := s.MarkRead(ctx, room.ID, ann.ID, bobs[1].ID); err != nil || moved {
		t.Fatalf("MarkRead to the same id = %v, %v; want not moved", moved, err)
	}
	u = unreadOf(t, s, ann)
	if got := u[room.ID]; got.LastRead != bobs[1].ID || got.Count != 0 {
		t.Fatalf("Ann's unread in the room after reading = %+v, want read up to %d, none unread", got, bobs[1].ID)
	}
	if got := u[1]; got.Count != 1 {
		t.Fatalf("reading one room read the lobby: %+v", got)
	}
	if moved, err := s.MarkRead(ctx, room.ID, 999, anns[0].ID); err != nil || moved {
		t.Fatalf("MarkRead of a non-member = %v, %v; want not moved", moved, err)
	}

	// Mentions: stored with the message, only after the marker.
	sayMentioning(t, s, room.ID, bob, []db.Account{ann}, "@aNN look")
	if got := unreadOf(t, s, ann)[room.ID]; got.Count != 1 || !got.Mention {
		t.Fatalf("Ann's unread after @aNN = %+v, want 1 with a mention", got)
	}
	last, _ := s.LatestID(ctx)
	if _, err := s.MarkRead(ctx, room.ID, ann.ID, last); err != nil {
		t.Fatal(err)
	}
	say(t, s, room.ID, bob, "Ann without an at", "an @ alone", "@An is someone else")
	sayMentioning(t, s, room.ID, ann, []db.Account{bob}, "@Bob only")
	if got := unreadOf(t, s, ann)[room.ID]; got.Count != 3 || got.Mention {
		t.Fatalf("Ann's unread = %+v, want 3 without a mention (the @ann one was read, the @Bob one is hers)", got)
	}
	sayMentioning(t, s, room.ID, ann, []db.Account{ann}, "@Ann talking to myself")
	if got := unreadOf(t, s, ann)[room.ID]; got.Count != 3 || got.Mention {
		t.Fatalf("Ann's unread after her own @Ann = %+v, want 3 without a mention", got)
	}

	// The count stops at 100.
	many := make([]string, 150)
	for i := range many {
		many[i] = fmt.Sprint("spam ", i)
	}
	say(t, s, room.ID, bob, many...)
	if got := unreadOf(t, s, ann)[room.ID]; got.Count != 100 {
		t.Fatalf("Ann's unread after 153 = %d, want 100", got.Count)
	}
	if got := unreadOf(t, s, bob)[room.ID]; got.Count != 3 {
		t.Fatalf("Bob's unread = %+v, want Ann's 3 (his own 150 are not)", got)
	}
}

// A mention of everyone in the room (user 0) marks the room for each of
// its people but the sender.
func TestMentionOfEveryone(t *testing.T) {
	s := newTestStore(t)
	ann, bob := memberAccount(t, s, "Ann"), memberAccount(t, s, "Bob")
	sayMentioning(t, s, 1, ann, []db.Account{{ID: 0, Name: "room"}}, "@room lunch!")
	if got := unreadOf(t, s, bob)[1]; got.Count != 1 || !got.Mention {
		t.Fatalf("Bob's unread after @room = %+v, want a mention", got)
	}
	if got := unreadOf(t, s, ann)[1]; got.Count != 0 || got.Mention {
		t.Fatalf("Ann's own @room = %+v, want nothing", got)
	}
}

func TestMembersComeAndGo(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, bob, cy := memberAccount(t, s, "Ann"), memberAccount(t, s, "Bob"), memberAccount(t, s, "Cy")
	room := createRoom(t, s, db.Room{Slug: "room", Name: "Room", Kind: db.KindPrivate, Post: db.PostMembers}, bob.ID)
	for range 2 {
		if err := s.AddMember(ctx, room.ID, ann.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddMember(ctx, room.ID, cy.ID); err != nil {
		t.Fatal(err)
	}
	if got := memberNames(t, s, room.ID); !slices.Equal(got, []string{"Ann", "Bob", "Cy"}) {
		t.Fatalf("members = %v, want [Ann Bob Cy]", got)
	}
	if got, _ := s.Memberships(ctx, ann.ID); !slices.Equal(got, []int64{1, room.ID}) {
		t.Fatalf("Ann's memberships = %v, want [1 %d]", got, room.ID)
	}
	ms, err := s.Members(ctx, room.ID)
	if err != nil || len(ms) != 3 || ms[0].UserID != ann.ID || ms[0].Role != db.RoleMember {
		t.Fatalf("Members = %+v, %v", ms, err)
	}
	if err := s.RemoveMember(ctx, room.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(ctx, room.ID, bob.ID); err != nil {
		t.Fatalf("removing a non-member: %v", err)
	}
	if got := memberNames(t, s, room.ID); !slices.Equal(got, []string{"Ann", "Cy"}) {
		t.Fatalf("members after Bob left = %v, want [Ann Cy]", got)
	}
	if got, _ := s.Memberships(ctx, bob.ID); !slices.Equal(got, []int64{1}) {
		t.Fatalf("Bob's memberships = %v, want [1]", got)
	}
	if _, ok := unreadOf(t, s, bob)[room.ID]; ok {
		t.Fatal("Bob still has an unread count in a room he left")
	}
	if got := memberNames(t, s, 1); !slices.Equal(got, []string{"Ann", "Bob", "Cy"}) {
		t.Fatalf("lobby members = %v, want all three", got)
	}
}

func TestUpdateRoom(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	room := createRoom(t, s, db.Room{Slug: "old", Name: "Old", Kind: db.KindOpen, Post: db.PostEveryone})
	room.Slug, room.Name, room.Topic, room.Post = "new", "New", "a topic", db.PostAdmins
	if err := s.UpdateRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	got := roomByID(t, s, room.ID)
	if got.Slug != "new" || got.Name != "New" || got.Topic != "a topic" || got.Post != db.PostAdmins || got.IsArchived() {
		t.Fatalf("renamed room = %+v", got)
	}

	got.Archived = time.Now().UnixMilli()
	if err := s.UpdateRoom(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got := roomByID(t, s, room.ID); !got.IsArchived() {
		t.Fatalf("archived room = %+v, want IsArchived", got)
	}
	got.Archived = 0
	if err := s.UpdateRoom(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got := roomByID(t, s, room.ID); got.IsArchived() {
		t.Fatalf("unarchived room = %+v, want open", got)
	}

	got.Slug = "lobby"
	if err := s.UpdateRoom(ctx, got); !errors.Is(err, db.ErrSlugTaken) {
		t.Fatalf("UpdateRoom to the lobby's slug: err = %v, want ErrSlugTaken", err)
	}
	if got := roomByID(t, s, room.ID); got.Slug != "new" {
		t.Fatalf("slug after a refused update = %q, want new", got.Slug)
	}
	if got := roomByID(t, s, 1); got.Slug != "lobby" || got.Name != "Lobby" {
		t.Fatalf("lobby after a refused update = %+v", got)
	}
}

func TestRoomStats(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.UnixMilli(1_700_000_000_000))
	s := newTestStoreWith(t, db.Options{Now: clk.now})
	ann, bob := memberAccount(t, s, "Ann"), memberAccount(t, s, "Bob")
	room := createRoom(t, s, db.Room{Slug: "room", Name: "Room", Kind: db.KindPrivate, Post: db.PostMembers}, ann.ID)
	empty := createRoom(t, s, db.Room{Slug: "empty", Name: "Empty", Kind: db.KindOpen, Post: db.PostEveryone})
	say(t, s, 1, ann, "a", "b")
	clk.advance(time.Second)
	say(t, s, room.ID, bob, "c", "d", "e")
	clk.advance(time.Second)
	say(t, s, 1, bob, "f")

	st, err := s.RoomStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]db.RoomStat{
		1:        {Room: 1, Members: 2, Messages: 3, Last: clk.now().UnixMilli()},
		room.ID:  {Room: room.ID, Members: 1, Messages: 3, Last: clk.now().UnixMilli() - 1000},
		empty.ID: {Room: empty.ID},
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("RoomStats =\n %+v\nwant\n %+v", st, want)
	}
}

// A database of schema 8 (before rooms): its messages become the lobby's,
// and its accounts its members, with nothing unread from before.
func TestRoomsMigration(t *testing.T) {
	ctx := context.Background()
	raw, path := schemaBefore(t, "0009_rooms.sql")
	now := time.Now().UnixMilli()
	if _, err := raw.Exec(`INSERT INTO accounts (id, name, name_key, password_hash, role, created) VALUES
		(1, 'Ann', 'ann', 'x', 'admin', ?), (2, 'Bob', 'bob', 'x', 'member', ?);
		INSERT INTO messages (user, message, timestamp, user_id) VALUES
		('Ann', 'one', ?, 1), ('guest', 'two', ?, NULL), ('Bob', 'three @ann', ?, 2)`, now, now, now, now, now); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != db.LatestSchemaVersion() {
		t.Fatalf("schema version = %d, %v; want %d", v, err, db.LatestSchemaVersion())
	}
	msgs, err := s.LatestIn(ctx, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if texts(msgs) != "one,two,three @ann" {
		t.Fatalf("lobby after the migration = %q, want the three earlier messages", texts(msgs))
	}
	for _, m := range msgs {
		if m.Room != 1 {
			t.Fatalf("message %+v not in room 1", m)
		}
	}
	if got, _ := s.Latest(ctx, 10); texts(got) != "one,two,three @ann" {
		t.Fatalf("Latest after the migration = %q", texts(got))
	}
	if got := memberNames(t, s, 1); !slices.Equal(got, []string{"Ann", "Bob"}) {
		t.Fatalf("lobby members after the migration = %v, want [Ann Bob]", got)
	}
	for _, a := range []db.Account{{ID: 1, Name: "Ann"}, {ID: 2, Name: "Bob"}} {
		if got, err := s.Memberships(ctx, a.ID); err != nil || !slices.Equal(got, []int64{1}) {
			t.Fatalf("memberships of %s = %v, %v; want [1]", a.Name, got, err)
		}
		if got := unreadOf(t, s, a)[1]; got.LastRead != 3 || got.Count != 0 || got.Mention {
			t.Fatalf("%s's lobby after the migration = %+v, want read up to 3, nothing unread", a.Name, got)
		}
	}
	// And the trigger holds on the migrated database.
	cy := memberAccount(t, s, "Cy")
	if got := unreadOf(t, s, cy)[1]; got.LastRead != 3 || got.Count != 0 {
		t.Fatalf("a new account's lobby = %+v, want read up to 3", got)
	}
}

// The admin's message list (Find with OpenRooms) shows open rooms'
// messages and none of a private or direct room's.
func TestFindOpenRoomsLeavesPrivateAndDirectOut(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann := createAccount(t, s, "Ann", "ann")
	bob := createAccount(t, s, "Bob", "bob")
	open := createRoom(t, s, db.Room{Slug: "open", Name: "Open", Kind: db.KindOpen, Post: db.PostEveryone})
	private := createRoom(t, s, db.Room{Slug: "private", Name: "Private", Kind: db.KindPrivate, Post: db.PostEveryone})
	direct, _, err := s.CreateRoom(ctx, db.Room{Slug: "dm", Kind: db.KindDirect}, []int64{ann.ID, bob.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []db.Draft{
		{User: "Ann", UserID: ann.ID, Message: "in the lobby"},
		{User: "Ann", UserID: ann.ID, Message: "in the open room", Room: open.ID},
		{User: "Ann", UserID: ann.ID, Message: "a secret", Room: private.ID},
		{User: "Ann", UserID: ann.ID, Message: "between us", Room: direct.ID},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Find(ctx, db.Filter{Limit: 10, OpenRooms: true})
	if err != nil {
		t.Fatal(err)
	}
	if g := texts(got); g != "in the lobby,in the open room" {
		t.Fatalf("Find in open rooms: %s", g)
	}
	all, err := s.Find(ctx, db.Filter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("Find without OpenRooms: %s", texts(all))
	}
}

func TestRoomMembersListsEveryRoomsPeopleByName(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	cy, bob := memberAccount(t, s, "Cy"), memberAccount(t, s, "bob")
	memberAccount(t, s, "Ann")
	secret := createRoom(t, s, db.Room{Slug: "secret", Name: "Secret", Kind: db.KindPrivate, Post: db.PostMembers}, cy.ID, bob.ID)
	empty := createRoom(t, s, db.Room{Slug: "empty", Name: "Empty", Kind: db.KindOpen, Post: db.PostEveryone})
	all, err := s.RoomMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ms []db.Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.User)
		}
		return out
	}
	for _, c := range []struct {
		room int64
		want []string
	}{{db.DefaultRoom, []string{"Ann", "bob", "Cy"}}, {secret.ID, []string{"bob", "Cy"}}, {empty.ID, nil}} {
		if got := names(all[c.room]); !slices.Equal(got, c.want) {
			t.Errorf("room %d's members = %q, want %q", c.room, got, c.want)
		}
	}
	if got := all[secret.ID]; len(got) > 0 && got[0].UserID != bob.ID {
		t.Errorf("secret's first member = %+v, want bob (id %d)", got[0], bob.ID)
	}
	// One room's members come with their name keys, which mentions in
	// look-alike letters are matched by.
	secrets, err := s.Members(ctx, secret.ID)
	if err != nil || len(secrets) != 2 || secrets[0].NameKey != bob.NameKey || secrets[1].NameKey != cy.NameKey || bob.NameKey == "" {
		t.Errorf("secret's Members = %+v, %v; want bob and Cy with their name keys", secrets, err)
	}
}
