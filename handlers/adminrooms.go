package handlers

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// The dashboard's rooms: every room with its kind, members, connections
// and message counts, never its messages (an admin does not read a private
// or direct room they are not in: SECURITY.md). An admin archives and
// unarchives a room and removes a member; the hub's rules refuse what may
// not be done (the default room is neither archived nor left), and the
// refusal is what the admin sees. Every action leaves an audit line.

// roomLister reads what the dashboard shows of the rooms.
type roomLister interface {
	Rooms(ctx context.Context) ([]db.Room, error)
	RoomStats(ctx context.Context) (map[int64]db.RoomStat, error)
	RoomMembers(ctx context.Context) (map[int64][]db.Member, error)
}

// roomRows is the dashboard's list of rooms: the default room first, then
// open rooms before archived ones, by title; with each room's connections
// from the snapshot.
func roomRows(ctx context.Context, store roomLister, snap chat.Snapshot) ([]views.RoomRow, error) {
	rooms, err := store.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := store.RoomStats(ctx)
	if err != nil {
		return nil, err
	}
	members, err := store.RoomMembers(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]views.RoomRow, 0, len(rooms))
	for _, r := range rooms {
		st := stats[r.ID]
		rows = append(rows, views.RoomRow{Room: r, Members: members[r.ID], Online: snap.InRoom[r.ID], Messages: st.Messages, Last: st.Last})
	}
	// The default room first, then open rooms, then archived ones; by
	// title within each.
	rank := func(r views.RoomRow) int {
		switch {
		case r.ID == db.DefaultRoom:
			return 0
		case r.IsArchived():
			return 2
		}
		return 1
	}
	slices.SortStableFunc(rows, func(a, b views.RoomRow) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(strings.ToLower(a.Title()), strings.ToLower(b.Title())), cmp.Compare(a.ID, b.ID))
	})
	return rows, nil
}

// roomAdmin is what the dashboard's room actions need of the hub.
type roomAdmin interface {
	Room(id int64) (db.Room, bool)
	ChangeRoom(ctx context.Context, id chat.Identity, r db.Room, ch chat.RoomChange) (db.Room, error)
	RemoveMember(ctx context.Context, id chat.Identity, r db.Room, user int64) error
}

// memberLister reads a room's members, to name the one removed.
type memberLister interface {
	Members(ctx context.Context, room int64) ([]db.Member, error)
}

// Refusals of the room actions.
var (
	errNoAdminRoom      = errors.New("no such room")
	errNotInRoom        = errors.New("that account is not in this room: it may be removed already")
	errRoomsNeedAccount = errors.New("rooms are managed from an admin account: sign in with one")
)

// roomAction reads the room in the path's {id} and hands it to act with
// the acting admin's identity. An admin who came in with the admin
// password has no account to act as, and is refused.
func roomAction(log *slog.Logger, a *Auth, hub roomAdmin, act func(w http.ResponseWriter, r *http.Request, room db.Room, me chat.Identity) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, log, http.StatusBadRequest, errors.New("id must be a room id"))
			return
		}
		room, ok := hub.Room(id)
		if !ok {
			writeError(w, r, log, http.StatusNotFound, errNoAdminRoom)
			return
		}
		me := a.Identity(r)
		if me.Guest() || me.Role != db.RoleAdmin {
			writeError(w, r, log, http.StatusForbidden, errRoomsNeedAccount)
			return
		}
		if err := act(w, r, room, me); err != nil {
			status := sendStatus(err)
			if errors.Is(err, errNotInRoom) {
				status = http.StatusNotFound
			}
			writeError(w, r, log, status, err)
		}
	})
}

// roomTarget names a room in the audit list: its name and address, or a
// direct room's address (its people are in the line's detail).
func roomTarget(r db.Room) string {
	if r.Kind == db.KindDirect || r.Name == "" {
		return r.Kind + " room /r/" + r.Slug
	}
	return r.Name + " (/r/" + r.Slug + ")"
}

// handleArchiveRoom serves POST /admin/rooms/{id}/archive (archive true)
// and /unarchive (false): an archived room is read-only and leaves
// everyone's list; its messages are kept.
func handleArchiveRoom(log *slog.Logger, a *Auth, hub roomAdmin, archive bool, live http.Handler, audit auditFunc) http.Handler {
	return roomAction(log, a, hub, func(w http.ResponseWriter, r *http.Request, room db.Room, me chat.Identity) error {
		was := room.IsArchived()
		if _, err := hub.ChangeRoom(r.Context(), me, room, chat.RoomChange{Archive: &archive}); err != nil {
			return err
		}
		if was != archive {
			action, detail := auditArchive, "read-only, hidden from the lists of rooms"
			if !archive {
				action, detail = auditUnarchive, "open for posting again"
			}
			audit(r, action, roomTarget(room), detail)
		}
		afterAction(w, r, live)
		return nil
	})
}

// handleRemoveMember serves POST /admin/rooms/{id}/members/{user}/remove:
// the account stops seeing the room at once, on every open page.
func handleRemoveMember(log *slog.Logger, a *Auth, hub roomAdmin, store memberLister, live http.Handler, audit auditFunc) http.Handler {
	return roomAction(log, a, hub, func(w http.ResponseWriter, r *http.Request, room db.Room, me chat.Identity) error {
		user, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
		if err != nil || user < 1 {
			return &chat.Refusal{Code: "bad_request", Text: "user must be an account id"}
		}
		members, err := store.Members(r.Context(), room.ID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(members, func(m db.Member) bool { return m.UserID == user })
		if i < 0 {
			return errNotInRoom
		}
		if err := hub.RemoveMember(r.Context(), me, room, user); err != nil {
			return err
		}
		audit(r, auditRemoveMember, roomTarget(room), members[i].User+" removed")
		afterAction(w, r, live)
		return nil
	})
}
