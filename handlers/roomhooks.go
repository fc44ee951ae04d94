package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"nochat/chat"
	"nochat/db"
)

// A room's webhooks, for whoever manages the room: an admin, or the
// room's creator (chat.Access.Manage). A guest is told to sign in (401),
// a member who does not manage the room is refused (403), a room one
// cannot see is 404 as everywhere; changes come as JSON from this site
// (guardJSON: another origin is 403); a bot's token opens none of these
// (bearerAuth: 403).
//
//	GET    /rooms/{slug}/webhooks        the list: id, name, created, last used (never a secret)
//	POST   /rooms/{slug}/webhooks        make one {name}: its URL and curl lines, shown this once
//	DELETE /rooms/{slug}/webhooks/{id}   delete it: its URL is 404 from then on

// Audit actions of webhooks (the dashboard, a room's owner, the shell).
const (
	auditWebhookCreate = "webhook create"
	auditWebhookDelete = "webhook delete"
)

// webhookAdminStore is what managing webhooks keeps in the database.
type webhookAdminStore interface {
	webhookMaker
	Webhooks(ctx context.Context, room int64) ([]db.Webhook, error)
	DeleteWebhook(ctx context.Context, id int64) (db.Webhook, error)
	Audit(ctx context.Context, e db.AuditEntry) error
}

var (
	errHookManage   = errors.New("only an admin or the room's creator may manage its webhooks")
	errHookSignIn   = errors.New("sign in to manage a room's webhooks")
	errNoHookInRoom = errors.New("this room has no such webhook")
)

// newWebhook is a webhook just made, with its URL: the only time it is
// shown.
type newWebhook struct {
	db.Webhook
	URL, Curl, CurlJSON string
}

// webhookAnswer is a webhook as the API lists it: times in Unix
// milliseconds, as messages' timestamps; last_used null if never.
func webhookAnswer(h db.Webhook) map[string]any {
	out := map[string]any{"id": h.ID, "room": h.Room, "name": h.Name, "created": h.Created.UnixMilli(), "created_by": h.CreatedBy, "last_used": nil}
	if !h.LastUsed.IsZero() {
		out["last_used"] = h.LastUsed.UnixMilli()
	}
	return out
}

// addWebhookRoutes adds the hook itself and a room's webhooks API.
func addWebhookRoutes(mux *http.ServeMux, d Deps) {
	mux.Handle("POST /hooks/{id}/{secret}", handleHook(d.Log, d.Store, d.Hub, d.Auth.now))
	rh := roomHooks{rooms: &roomRoutes{log: d.Log, hub: d.Hub, store: d.Store, who: d.Auth}, store: d.Store, trustProxy: d.TrustProxy, maxName: d.Hub.MaxNameLen(), now: d.Auth.now}
	change := guardJSON(d)
	mux.Handle("GET /rooms/{slug}/webhooks", http.HandlerFunc(rh.list))
	mux.Handle("POST /rooms/{slug}/webhooks", change(rh.create))
	mux.Handle("DELETE /rooms/{slug}/webhooks/{id}", change(rh.delete))
}

type roomHooks struct {
	rooms      *roomRoutes
	store      webhookAdminStore
	trustProxy bool
	maxName    int
	now        func() time.Time
}

// managed is the request's room if its person manages it.
func (rh roomHooks) managed(w http.ResponseWriter, r *http.Request) (db.Room, chat.Identity, bool) {
	if rh.rooms.who.Identity(r).Guest() {
		writeError(w, r, rh.rooms.log, http.StatusUnauthorized, errHookSignIn)
		return db.Room{}, chat.Identity{}, false
	}
	room, id, a, ok := rh.rooms.room(w, r)
	if !ok {
		return db.Room{}, chat.Identity{}, false
	}
	if !a.Manage {
		writeError(w, r, rh.rooms.log, http.StatusForbidden, errHookManage)
		return db.Room{}, chat.Identity{}, false
	}
	return room, id, true
}

func (rh roomHooks) audit(r *http.Request, id chat.Identity, action, target, detail string) {
	e := db.AuditEntry{At: rh.now(), ActorID: id.UserID, Actor: id.Name, Action: action, Target: chat.Cut(target, 200), Detail: chat.Cut(detail, 300)}
	if err := rh.store.Audit(context.WithoutCancel(r.Context()), e); err != nil {
		rh.rooms.log.Error("audit line not stored", "actor", id.Name, "action", action, "err", err)
	}
}

func (rh roomHooks) list(w http.ResponseWriter, r *http.Request) {
	room, _, ok := rh.managed(w, r)
	if !ok {
		return
	}
	hooks, err := rh.store.Webhooks(r.Context(), room.ID)
	if err != nil {
		writeError(w, r, rh.rooms.log, http.StatusServiceUnavailable, err)
		return
	}
	out := make([]map[string]any, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, webhookAnswer(h))
	}
	encode(w, http.StatusOK, out)
}

func (rh roomHooks) create(w http.ResponseWriter, r *http.Request) {
	room, id, ok := rh.managed(w, r)
	if !ok {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	if err := readJSON(w, r, &body, `{"name": string (optional)}`); err != nil {
		writeBodyError(w, r, rh.rooms.log, err)
		return
	}
	h, secret, err := CreateWebhook(r.Context(), rh.store, room, body.Name, id.Name, rh.maxName, rh.now())
	if err != nil {
		writeError(w, r, rh.rooms.log, webhookStatus(err), err)
		return
	}
	rh.audit(r, id, auditWebhookCreate, h.Name, "room "+room.Slug+", webhook "+strconv.FormatInt(h.ID, 10))
	w.Header().Set("Cache-Control", "no-store")
	made := newWebhookOf(h, siteURL(r, rh.trustProxy), secret)
	out := webhookAnswer(h)
	out["url"], out["curl"], out["curl_json"] = made.URL, made.Curl, made.CurlJSON
	encode(w, http.StatusCreated, out)
}

// newWebhookOf is h with its URL on site.
func newWebhookOf(h db.Webhook, site, secret string) newWebhook {
	url := site + WebhookPath(h.ID, secret)
	plain, json := WebhookCurl(url)
	return newWebhook{Webhook: h, URL: url, Curl: plain, CurlJSON: json}
}

// webhookStatus is the status of a refusal to make a webhook.
func webhookStatus(err error) int {
	var refusal *chat.Refusal
	switch {
	case errors.Is(err, errHookRoom):
		return http.StatusForbidden
	case errors.Is(err, db.ErrTooManyWebhooks), errors.Is(err, errHookNameUsed), errors.Is(err, errHookPersonName):
		return http.StatusConflict
	case errors.As(err, &refusal):
		return http.StatusBadRequest // the name
	}
	return http.StatusServiceUnavailable
}

func (rh roomHooks) delete(w http.ResponseWriter, r *http.Request) {
	room, id, ok := rh.managed(w, r)
	if !ok {
		return
	}
	hookID, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, r, rh.rooms.log, http.StatusNotFound, errNoHookInRoom)
		return
	}
	hooks, err := rh.store.Webhooks(r.Context(), room.ID)
	if err != nil {
		writeError(w, r, rh.rooms.log, http.StatusServiceUnavailable, err)
		return
	}
	found := false
	for _, h := range hooks {
		found = found || h.ID == hookID
	}
	if !found {
		writeError(w, r, rh.rooms.log, http.StatusNotFound, errNoHookInRoom)
		return
	}
	h, err := rh.store.DeleteWebhook(r.Context(), hookID)
	if err != nil {
		writeError(w, r, rh.rooms.log, http.StatusServiceUnavailable, err)
		return
	}
	rh.audit(r, id, auditWebhookDelete, h.Name, "room "+room.Slug+", webhook "+strconv.FormatInt(h.ID, 10))
	encode(w, http.StatusOK, map[string]string{"status": "OK"})
}
