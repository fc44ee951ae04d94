package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"nochat/chat"
	"nochat/db"
	"nochat/static"
	"nochat/views"
)

// pageSize is how many messages one history request returns unless it asks
// for another number: what the chat page renders on the server, and what it
// asks for each time it loads older messages.
const pageSize = 50

// room is what the chat page needs from the hub: its socket, and the
// limits the page checks before sending.
type room interface {
	ServeWSAs(w http.ResponseWriter, r *http.Request, id chat.Identity)
	Limits() chat.Limits
	GuestsMayRead() bool
	GuestsMayPost() bool
	Rooms(ctx context.Context, id chat.Identity) ([]chat.RoomView, error)
	Room(id int64) (db.Room, bool)
	RoomBySlug(slug string) (db.Room, bool)
	AccessTo(ctx context.Context, id chat.Identity, r db.Room) (chat.Access, error)
	CatchUp(ctx context.Context) bool
	LatestID() int64
}

// pageReader reads the history a chat page renders: the newest page, or
// the messages around a permalink's.
type pageReader interface {
	LatestIn(ctx context.Context, room int64, n int) ([]db.Message, error)
	aroundReader
}

// adminChecker tells a logged-in admin from everyone else, given who the
// request speaks for.
type adminChecker interface {
	AdminAs(r *http.Request, id chat.Identity) bool
}

// handleRoot serves GET /: a WebSocket upgrade goes to the hub, anything
// else gets the chat page with the newest messages already in its HTML. An
// admin's page offers to delete messages; admins is nil when there is no
// admin login. The socket and the page are the signed-in person's (who);
// with guests off, a guest's page is the way to sign in.
func handleRoot(log *slog.Logger, hub room, store pageReader, admins adminChecker, who identifier, assets *static.Assets, maxUpload int64) http.Handler {
	page := views.Page{
		Title:      "NoChat",
		CSSURL:     assets.URL("style.css"),
		JSURL:      assets.URL("app.js"),
		IconURL:    assets.URL("favicon.svg"),
		AppIconURL: assets.URL("icon-192.png"),
	}
	cardAssets := cardAssetsOf(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := who.Identity(r)
		if chat.IsUpgrade(r) {
			hub.ServeWSAs(w, r, id)
			return
		}
		if id.Guest() && !hub.GuestsMayRead() {
			w.Header().Set("Cache-Control", "no-store")
			next := ""
			if r.URL.Path != "/" {
				next = "?next=" + url.QueryEscape(r.URL.Path)
			}
			http.Redirect(w, r, "/signin"+next, http.StatusSeeOther)
			return
		}
		rm, ok := hub.Room(db.DefaultRoom)
		var access chat.Access
		var err error
		if slug := r.PathValue("slug"); slug != "" {
			rm, access, ok, err = lookUpRoom(r.Context(), hub, id, slug)
		} else {
			access, err = hub.AccessTo(r.Context(), id, rm)
		}
		if ok && err != nil {
			log.Error("chat page", "err", err)
			http.Error(w, "rooms are unavailable right now; try again shortly", http.StatusServiceUnavailable)
			return
		}
		if !ok || !access.See {
			w.Header().Set("Cache-Control", "no-store")
			if id.Guest() {
				// Perhaps theirs once they sign in.
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			render(w, r, log, http.StatusNotFound, views.MissingPage(cardAssets, "No such room",
				"There is no room at this address, or it is not one of yours: its people can invite you.", "/", "Go to the lobby"))
			return
		}
		rooms, err := hub.Rooms(r.Context(), id)
		if err != nil {
			log.Error("chat page", "err", err)
			http.Error(w, "rooms are unavailable right now; try again shortly", http.StatusServiceUnavailable)
			return
		}
		// Read before the history: every message after it reaches the
		// page's socket, which resumes from it (in every room).
		latest := hub.LatestID()
		var msgs []db.Message
		var older, newer bool
		var focus int64
		if v := r.PathValue("id"); v != "" {
			// A permalink: the history around the message, which must be
			// this room's (never a word about another room's).
			focus, err = strconv.ParseInt(v, 10, 64)
			if err == nil && focus > 0 {
				msgs, older, newer, err = aroundIn(r.Context(), store, rm.ID, focus, pageSize/2)
			} else {
				err = db.ErrNotFound
			}
			if errors.Is(err, db.ErrNotFound) {
				w.Header().Set("Cache-Control", "no-store")
				render(w, r, log, http.StatusNotFound, views.MissingPage(cardAssets, "No such message",
					"This room has no message at this address: it may have been deleted.", "/r/"+url.PathEscape(rm.Slug), "Open the room"))
				return
			}
		} else {
			// One more than a page, to know whether there are older
			// messages: a full page alone does not say.
			msgs, err = store.LatestIn(r.Context(), rm.ID, pageSize+1)
			if older = len(msgs) > pageSize; older {
				msgs = msgs[1:] // oldest first: the extra one is the oldest
			}
		}
		if err != nil {
			log.Error("chat page", "err", err)
			http.Error(w, "history is unavailable right now; try again shortly", http.StatusInternalServerError)
			return
		}
		limits := hub.Limits()
		p := page
		head := views.RoomHead{ID: rm.ID, Slug: rm.Slug, Title: rm.Name, Topic: rm.Topic, Kind: rm.Kind,
			Member: access.Member, MayPost: access.Post, Manage: access.Manage, Invite: access.Invite,
			Archived: rm.IsArchived(), Post: rm.Post}
		links := make([]views.RoomLink, 0, len(rooms))
		for _, v := range rooms {
			links = append(links, views.RoomLink{ID: v.ID, Slug: v.Slug, Title: v.Title, Kind: v.Kind, Member: v.Member, Unread: v.Unread, Mention: v.Mention, LastRead: v.LastRead, Notify: v.Notify})
			if v.ID == rm.ID {
				head.Title = v.Title // a direct room's people
				head.LastRead = v.LastRead
			}
		}
		if rm.ID != db.DefaultRoom {
			p.Title = head.Title + " · NoChat"
		}
		p.Admin = admins != nil && admins.AdminAs(r, id)
		p.User, p.UserID, p.SignIn = id.Name, id.UserID, admins != nil
		if !id.SessionEnds.IsZero() {
			p.SessionEnds = id.SessionEnds.UnixMilli()
		}
		p.GuestsMay, p.GuestsPost = hub.GuestsMayRead(), hub.GuestsMayPost()
		w.Header().Set("Cache-Control", "private, no-cache") // history a shared cache must not keep
		w.Header().Set("Vary", "Cookie")                     // an admin's page has more controls
		render(w, r, log, http.StatusOK, views.ChatPage(p, views.Chat{
			Messages:   msgs,
			HasOlder:   older,
			PageSize:   pageSize,
			MaxMessage: limits.MaxMessageLen,
			MaxName:    limits.MaxNameLen,
			MaxUpload:  maxUpload,
			EditWindow: limits.EditWindow,
			Room:       head,
			Rooms:      links,
			LatestID:   latest,
			Focus:      focus,
			HasNewer:   newer,
		}))
	})
}
