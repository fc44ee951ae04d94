package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"nochat/db"
	"nochat/views"
)

// The dashboard's Webhooks panel: make a webhook for a room (its URL
// shown once, with curl lines), delete one. Every route is an admin's
// POST from the dashboard (requireAdmin, sameOrigin), and leaves an audit
// line.
//
//	POST /admin/webhooks               make one: form room (id), name
//	POST /admin/webhooks/{id}/delete   delete it: its URL is 404 from then on

// webhooksList is the Webhooks panel's data, with a webhook just made (or
// none).
func webhooksList(r *http.Request, store webhookAdminStore, rooms []db.Room, made views.NewWebhook, now time.Time) (views.Webhooks, error) {
	hooks, err := store.Webhooks(r.Context(), 0)
	return views.Webhooks{Items: hooks, Rooms: rooms, Taken: now, New: made}, err
}

// webhookRooms finds rooms by id.
type webhookRooms interface {
	Room(id int64) (db.Room, bool)
	MaxNameLen() int
}

var errHookFormRoom = errors.New("room must be the id of an open or private room that is not archived")

// handleCreateWebhook serves POST /admin/webhooks, and shows the new URL
// once (show renders the dashboard with it).
func handleCreateWebhook(log *slog.Logger, a *Auth, store webhookAdminStore, hub webhookRooms, trustProxy bool, audit auditFunc, show func(views.NewWebhook) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			writeError(w, r, log, http.StatusBadRequest, errors.New("the form could not be read"))
			return
		}
		id, err := strconv.ParseInt(r.PostForm.Get("room"), 10, 64)
		room, ok := hub.Room(id)
		if err != nil || !ok {
			writeError(w, r, log, http.StatusBadRequest, errHookFormRoom)
			return
		}
		_, actor := a.actor(r)
		h, secret, err := CreateWebhook(r.Context(), store, room, r.PostForm.Get("name"), actor, hub.MaxNameLen(), a.now())
		if err != nil {
			writeError(w, r, log, webhookStatus(err), err)
			return
		}
		audit(r, auditWebhookCreate, h.Name, "room "+room.Slug+", webhook "+strconv.FormatInt(h.ID, 10))
		made := newWebhookOf(h, siteURL(r, trustProxy), secret)
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		show(views.NewWebhook{Name: h.Name, Room: room.Slug, URL: made.URL, Curl: made.Curl, CurlJSON: made.CurlJSON}).ServeHTTP(w, r)
	})
}

// handleDeleteWebhook serves POST /admin/webhooks/{id}/delete.
func handleDeleteWebhook(log *slog.Logger, store webhookAdminStore, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, log, http.StatusNotFound, errNoHook)
			return
		}
		h, err := store.DeleteWebhook(r.Context(), id)
		if errors.Is(err, db.ErrNotFound) {
			writeError(w, r, log, http.StatusNotFound, errNoHook)
			return
		}
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		audit(r, auditWebhookDelete, h.Name, "webhook "+strconv.FormatInt(h.ID, 10))
		if r.Header.Get("Accept") == "application/json" {
			encode(w, http.StatusOK, map[string]string{"status": "OK"})
			return
		}
		http.Redirect(w, r, "/admin#webhooks", http.StatusSeeOther)
	})
}
