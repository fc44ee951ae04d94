package db

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// DefaultRoom is the room every account is in and everything the tutorial
// knows means: echo-protocol, GET /discussion/latest/{n}, POST /discussion.
const DefaultRoom int64 = 1

// Room kinds.
const (
	KindOpen    = "open"    // every member may see and join it
	KindPrivate = "private" // its members invite others
	KindDirect  = "direct"  // a conversation between the people in it
)

// Who may post in a room.
const (
	PostEveryone = "everyone" // everyone who may see it
	PostMembers  = "members"  // its members
	PostAdmins   = "admins"   // admins only: announcements
)

// Room is a room as stored.
type Room struct {
	ID        int64  `json:"id"`
	Slug      string `json:"slug"`
	Name      string `json:"name"`
	Topic     string `json:"topic"`
	Kind      string `json:"kind"`
	Post      string `json:"post"`
	Guests    bool   `json:"guests"` // people without an account may read and post
	CreatedBy int64  `json:"created_by,omitempty"`
	Created   int64  `json:"created"`            // Unix milliseconds
	Archived  int64  `json:"archived,omitempty"` // Unix milliseconds; 0 while open
	// DirectKey is a direct room's people: sorted account ids, joined by ",".
	DirectKey string `json:"-"`
}

// IsArchived reports whether the room is read-only and hidden.
func (r Room) IsArchived() bool { return r.Archived != 0 }

// DirectKey is the key of the direct room of the given people: the same
// set, in any order and with repeats, has the same key.
func DirectKey(ids []int64) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// ErrSlugTaken is CreateRoom's and UpdateRoom's error for a slug another
// room has.
var ErrSlugTaken = errors.New("a room with this address exists")

const roomColumns = "id, slug, name, topic, kind, post, guests, ifnull(created_by, 0), created, ifnull(archived, 0), ifnull(direct_key, '')"

func scanRoom(row interface{ Scan(...any) error }) (Room, error) {
	var r Room
	err := row.Scan(&r.ID, &r.Slug, &r.Name, &r.Topic, &r.Kind, &r.Post, &r.Guests, &r.CreatedBy, &r.Created, &r.Archived, &r.DirectKey)
	return r, err
}

// Rooms returns every room, archived ones too, by id.
func (s *Store) Rooms(ctx context.Context) ([]Room, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+roomColumns+" FROM rooms ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	defer rows.Close()
	var out []Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, fmt.Errorf("rooms: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	return out, nil
}

// CreateRoom stores a new room with the given members, in one transaction
// (on a cluster, one command of its log). A slug another room has is
// ErrSlugTaken. A direct room whose people already have one is not
// created again: CreateRoom returns that room, and created false.
func (s *Store) CreateRoom(ctx context.Context, r Room, members []int64) (_ Room, created bool, err error) {
	r.Created = s.now().UnixMilli()
	res, err := s.command(ctx, command{Op: opRoom, Room: &r, Members: members})
	switch {
	case errors.Is(err, ErrSlugTaken):
		return Room{}, false, err
	case err != nil:
		return Room{}, false, fmt.Errorf("create room %s: %w", r.Slug, err)
	}
	return res.Room, res.RoomChange != nil, nil
}

// createRoom is CreateRoom in tx. id is the room's id, the command's
// sequence in a cluster's log; 0 takes the next one. It returns the
// change made, nil when the people's direct room existed already.
func createRoom(ctx context.Context, tx *sql.Tx, r Room, members []int64, id int64) (Room, *RoomChange, error) {
	if r.Kind == KindDirect {
		r.DirectKey = DirectKey(members) // not in the log's copy of r: it follows from members
		had, err := scanRoom(tx.QueryRowContext(ctx, "SELECT "+roomColumns+" FROM rooms WHERE direct_key = ?", r.DirectKey))
		if err == nil {
			return had, nil, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Room{}, nil, err
		}
	}
	var directKey any
	if r.DirectKey != "" {
		directKey = r.DirectKey
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO rooms (id, slug, name, topic, kind, post, guests, direct_key, created_by, created, from_log)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		nullID(id), r.Slug, r.Name, r.Topic, r.Kind, cmp.Or(r.Post, PostEveryone), r.Guests, directKey, nullID(r.CreatedBy), r.Created, id != 0).Scan(&r.ID)
	if isUnique(err) && strings.Contains(err.Error(), "rooms.slug") {
		return Room{}, nil, ErrSlugTaken
	}
	if err != nil {
		return Room{}, nil, err
	}
	r.Post = cmp.Or(r.Post, PostEveryone)
	change := &RoomChange{ID: r.ID, Room: &r, Created: true}
	for _, user := range members {
		added, err := addMember(ctx, tx, r.ID, user, r.Created)
		if err != nil {
			return Room{}, nil, err
		}
		if added {
			change.Joined = append(change.Joined, user)
		}
	}
	return r, change, nil
}

// isUnique reports whether err is a UNIQUE constraint's.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// addMember puts an account in a room, with nothing unread from before,
// and reports whether it was not in it already.
func addMember(ctx context.Context, tx *sql.Tx, room, user, now int64) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO members (room_id, user_id, last_read, joined)
		VALUES (?, ?, (SELECT ifnull(max(id), 0) FROM messages), ?) ON CONFLICT DO NOTHING`, room, user, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// UpdateRoom stores a room's name, slug, topic, post, guests and archived
// time. A slug another room has is ErrSlugTaken; a room that is not,
// ErrNotFound.
func (s *Store) UpdateRoom(ctx context.Context, r Room) error {
	if _, err := s.command(ctx, command{Op: opRoomUpdate, Room: &r}); err != nil {
		if errors.Is(err, ErrSlugTaken) {
			return err
		}
		return fmt.Errorf("update room %d: %w", r.ID, err)
	}
	return nil
}

// updateRoom is UpdateRoom in tx.
func updateRoom(ctx context.Context, tx *sql.Tx, r Room) (*RoomChange, error) {
	was, err := roomIn(ctx, tx, r.ID)
	if err != nil {
		return nil, err
	}
	return storeRoom(ctx, tx, was, r)
}

// roomIn reads room id in tx, or reports ErrNotFound.
func roomIn(ctx context.Context, tx *sql.Tx, id int64) (Room, error) {
	r, err := scanRoom(tx.QueryRowContext(ctx, "SELECT "+roomColumns+" FROM rooms WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, ErrNotFound
	}
	return r, err
}

// storeRoom writes r's settings over was, the room as it was, and returns
// the change as stored.
func storeRoom(ctx context.Context, tx *sql.Tx, was, r Room) (*RoomChange, error) {
	var archived any
	if r.Archived != 0 {
		archived = r.Archived
	}
	_, err := tx.ExecContext(ctx, "UPDATE rooms SET slug = ?, name = ?, topic = ?, post = ?, guests = ?, archived = ? WHERE id = ?",
		r.Slug, r.Name, r.Topic, r.Post, r.Guests, archived, r.ID)
	if isUnique(err) {
		return nil, ErrSlugTaken
	}
	if err != nil {
		return nil, err
	}
	now, err := roomIn(ctx, tx, r.ID)
	if err != nil {
		return nil, err
	}
	return &RoomChange{ID: r.ID, Room: &now, Archived: now.IsArchived() && !was.IsArchived()}, nil
}

// RoomEdit is a change to some of a room's settings: nil leaves one as it
// is, however another edit left it meanwhile.
type RoomEdit struct {
	ID      int64
	Name    *string `json:",omitempty"`
	Topic   *string `json:",omitempty"`
	Post    *string `json:",omitempty"`
	Guests  *bool   `json:",omitempty"`
	Archive *bool   `json:",omitempty"` // true: archived, as of At if it was open; false: open
	At      int64   `json:",omitempty"` // Unix milliseconds
}

// EditRoom changes the settings e names, and no others, and returns the
// room as it left it: two people's edits of different settings both hold,
// in whatever order they reach the store (on a cluster, through two
// nodes). A room that is not is ErrNotFound.
func (s *Store) EditRoom(ctx context.Context, e RoomEdit) (RoomChange, error) {
	e.At = s.now().UnixMilli()
	r, err := s.command(ctx, command{Op: opRoomEdit, Edit: &e})
	if err != nil {
		return RoomChange{}, fmt.Errorf("edit room %d: %w", e.ID, err)
	}
	if r.RoomChange == nil {
		return RoomChange{}, fmt.Errorf("edit room %d: %w", e.ID, ErrNotFound)
	}
	return *r.RoomChange, nil
}

// editRoom is EditRoom in tx.
func editRoom(ctx context.Context, tx *sql.Tx, e RoomEdit) (*RoomChange, error) {
	was, err := roomIn(ctx, tx, e.ID)
	if err != nil {
		return nil, err
	}
	r := was
	set := func(to *string, from *string) {
		if from != nil {
			*to = *from
		}
	}
	set(&r.Name, e.Name)
	set(&r.Topic, e.Topic)
	set(&r.Post, e.Post)
	if e.Guests != nil {
		r.Guests = *e.Guests
	}
	switch {
	case e.Archive == nil:
	case *e.Archive && !r.IsArchived():
		r.Archived = e.At
	case !*e.Archive:
		r.Archived = 0
	}
	return storeRoom(ctx, tx, was, r)
}

// AddMember puts an account in a room (nothing if it is in it already).
func (s *Store) AddMember(ctx context.Context, room, user int64) error {
	_, err := s.command(ctx, command{Op: opMember, RoomID: room, AccountID: user, At: s.now().UnixMilli()})
	if err != nil {
		return fmt.Errorf("add member %d to room %d: %w", user, room, err)
	}
	return nil
}

// RemoveMember takes an account out of a room (nothing if it is not in it).
func (s *Store) RemoveMember(ctx context.Context, room, user int64) error {
	_, err := s.command(ctx, command{Op: opUnmember, RoomID: room, AccountID: user})
	if err != nil {
		return fmt.Errorf("remove member %d from room %d: %w", user, room, err)
	}
	return nil
}

// removeMember is RemoveMember in tx; it reports whether the account was
// in the room.
func removeMember(ctx context.Context, tx *sql.Tx, room, user int64) (bool, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM members WHERE room_id = ? AND user_id = ?", room, user)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Memberships returns the rooms an account is in, by room id.
func (s *Store) Memberships(ctx context.Context, user int64) ([]int64, error) {
	ids, err := column[int64](s.read.QueryContext(ctx, "SELECT room_id FROM members WHERE user_id = ? ORDER BY room_id", user))
	if err != nil {
		return nil, fmt.Errorf("memberships of %d: %w", user, err)
	}
	return ids, nil
}

// Member is one person in a room.
type Member struct {
	UserID int64  `json:"user_id"`
	User   string `json:"user"`
	Role   string `json:"role"`
	// NameKey is the account's name as names are compared (chat.NameKey):
	// a mention typed in look-alike letters finds it.
	NameKey string `json:"-"`
}

// Members returns a room's members, by name.
func (s *Store) Members(ctx context.Context, room int64) ([]Member, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT accounts.id, accounts.name, accounts.role, accounts.name_key FROM members
		JOIN accounts ON accounts.id = members.user_id WHERE members.room_id = ? ORDER BY accounts.name_key`, room)
	if err != nil {
		return nil, fmt.Errorf("members of room %d: %w", room, err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.UserID, &m.User, &m.Role, &m.NameKey); err != nil {
			return nil, fmt.Errorf("members of room %d: %w", room, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RoomMembers returns every room's members, by room id, each room's by
// name: the dashboard's member lists, in one query.
func (s *Store) RoomMembers(ctx context.Context) (map[int64][]Member, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT members.room_id, accounts.id, accounts.name, accounts.role FROM members
		JOIN accounts ON accounts.id = members.user_id ORDER BY members.room_id, accounts.name_key`)
	if err != nil {
		return nil, fmt.Errorf("members of rooms: %w", err)
	}
	defer rows.Close()
	out := make(map[int64][]Member)
	for rows.Next() {
		var room int64
		var m Member
		if err := rows.Scan(&room, &m.UserID, &m.User, &m.Role); err != nil {
			return nil, fmt.Errorf("members of rooms: %w", err)
		}
		out[room] = append(out[room], m)
	}
	return out, rows.Err()
}

// MarkRead moves an account's read marker in a room up to id (never
// down: a tab that shows older messages does not unread newer ones). It
// reports whether the marker moved.
//
// On a cluster the marker moves here at once, and the other nodes follow
// within readsEvery: a command of the log carries each account's newest
// marker of each room it read meanwhile (one for many reads), so that a
// page loaded through any node counts the same messages unread.
func (s *Store) MarkRead(ctx context.Context, room, user, id int64) (bool, error) {
	moved, err := markRead(ctx, s.write, room, user, id)
	if err != nil {
		return false, fmt.Errorf("mark room %d read: %w", room, err)
	}
	if moved && s.shared != nil {
		s.shared.shareRead(room, user, id)
	}
	return moved, nil
}

// markRead is MarkRead on db, a connection or a transaction.
func markRead(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, room, user, id int64) (bool, error) {
	res, err := db.ExecContext(ctx, "UPDATE members SET last_read = ? WHERE room_id = ? AND user_id = ? AND last_read < ?", id, room, user, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Unread is an account's unread state in one room.
type Unread struct {
	Room     int64  `json:"room"`
	LastRead int64  `json:"last_read"` // the newest id read
	Count    int    `json:"unread"`    // messages after it, not the account's own
	Mention  bool   `json:"mention"`   // one of them mentions the account, or everyone
	Notify   string `json:"notify"`    // NotifyAll, NotifyMentions or NotifyNone
}

// maxUnread is where an unread count stops: a list shows "99+".
const maxUnread = 100

// UnreadOf returns an account's unread state in every room it is in: a
// mention is one stored with the message, of the account or of everyone
// in the room.
func (s *Store) UnreadOf(ctx context.Context, user int64) (map[int64]Unread, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT m.room_id, m.last_read,
		(SELECT count(*) FROM (SELECT 1 FROM messages WHERE room_id = m.room_id AND id > m.last_read
			AND user_id IS NOT ? LIMIT ?)),
		EXISTS (SELECT 1 FROM mentions n JOIN messages ON messages.id = n.message_id
			WHERE n.user_id IN (?, 0) AND n.message_id > m.last_read AND messages.room_id = m.room_id
			AND messages.user_id IS NOT ?),
		m.notify
		FROM members m WHERE m.user_id = ?`, user, maxUnread, user, user, user)
	if err != nil {
		return nil, fmt.Errorf("unread of %d: %w", user, err)
	}
	defer rows.Close()
	out := make(map[int64]Unread)
	for rows.Next() {
		var u Unread
		if err := rows.Scan(&u.Room, &u.LastRead, &u.Count, &u.Mention, &u.Notify); err != nil {
			return nil, fmt.Errorf("unread of %d: %w", user, err)
		}
		out[u.Room] = u
	}
	return out, rows.Err()
}

// RoomStat is what the dashboard shows of a room.
type RoomStat struct {
	Room     int64
	Members  int
	Messages int64
	Last     int64 // Unix milliseconds of its newest message, 0 if none
}

// RoomStats returns every room's member and message counts.
func (s *Store) RoomStats(ctx context.Context) (map[int64]RoomStat, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT r.id,
		(SELECT count(*) FROM members WHERE room_id = r.id),
		(SELECT count(*) FROM messages WHERE room_id = r.id),
		(SELECT ifnull(max(timestamp), 0) FROM messages WHERE id = (SELECT max(id) FROM messages WHERE room_id = r.id))
		FROM rooms r`)
	if err != nil {
		return nil, fmt.Errorf("room stats: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]RoomStat)
	for rows.Next() {
		var st RoomStat
		if err := rows.Scan(&st.Room, &st.Members, &st.Messages, &st.Last); err != nil {
			return nil, fmt.Errorf("room stats: %w", err)
		}
		out[st.Room] = st
	}
	return out, rows.Err()
}

// LatestIn returns a room's newest n messages, oldest first.
func (s *Store) LatestIn(ctx context.Context, room int64, n int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.room_id = ? ORDER BY messages.id DESC LIMIT ?", room, n)
	slices.Reverse(msgs)
	if err == nil {
		msgs, err = withState(ctx, s.read, msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("latest messages of room %d: %w", room, err)
	}
	return msgs, nil
}

// BeforeIn returns a room's newest limit messages with ids below id,
// oldest first.
func (s *Store) BeforeIn(ctx context.Context, room, id int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.room_id = ? AND messages.id < ? ORDER BY messages.id DESC LIMIT ?", room, id, limit)
	slices.Reverse(msgs)
	if err == nil {
		msgs, err = withState(ctx, s.read, msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("messages of room %d before %d: %w", room, id, err)
	}
	return msgs, nil
}

// PageStartIn returns the id of the oldest of a room's newest n messages
// with ids below before (0: of all its messages), or 0 when it has no more
// than n there: where a page of history begins, read then a part at a
// time (RangeIn) rather than held whole while a slow client reads it.
func (s *Store) PageStartIn(ctx context.Context, room, before int64, n int) (int64, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	var id int64
	err := s.read.QueryRowContext(ctx, "SELECT id FROM messages WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT 1 OFFSET ?", room, before, n-1).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("start of a page of room %d: %w", room, err)
	}
	return id, nil
}

// RangeIn returns up to limit of a room's messages with ids from from up
// to, not including, to (0: no end), oldest first.
func (s *Store) RangeIn(ctx context.Context, room, from, to int64, limit int) ([]Message, error) {
	if to <= 0 {
		to = math.MaxInt64
	}
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.room_id = ? AND messages.id >= ? AND messages.id < ? ORDER BY messages.id LIMIT ?", room, from, to, limit)
	if err == nil {
		msgs, err = withState(ctx, s.read, msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("messages of room %d from %d: %w", room, from, err)
	}
	return msgs, nil
}

// AfterIn returns a room's oldest limit messages with ids above id, oldest
// first: the history below a message a permalink opens.
func (s *Store) AfterIn(ctx context.Context, room, id int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.room_id = ? AND messages.id > ? ORDER BY messages.id LIMIT ?", room, id, limit)
	if err == nil {
		// Their files, reactions and quotes, as every page of history.
		msgs, err = withState(ctx, s.read, msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("messages of room %d after %d: %w", room, id, err)
	}
	return msgs, nil
}
