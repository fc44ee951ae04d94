package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"nochat/chat"
	"nochat/db"
)

// Notifications and Web Push (issue 15, items 2 and 3):
//
//	PUT    /rooms/{slug}/notify   {"level": "all"|"mentions"|"none"}: a member of the room
//	GET    /push/key              the VAPID public key: anyone
//	POST   /push/subscriptions    a PushSubscription's toJSON(): a signed-in person
//	DELETE /push/subscriptions    {"endpoint": ...}: that person's own only
//
// Every change needs an account (guests: 401) and comes as JSON from an
// allowed origin (guardJSON: others 403).

// PushService is what the push routes need of Web Push (push.Sender).
type PushService interface {
	// PublicKey is the VAPID public key, base64url: what a page's
	// pushManager.subscribe needs as its applicationServerKey.
	PublicKey() string
	// CheckSubscription refuses a subscription the server will not send
	// to, with a reason to show.
	CheckSubscription(endpoint, p256dh, auth string) error
}

type pushStore interface {
	SavePushSubscription(ctx context.Context, sub db.PushSubscription, max int) error
	DeletePushSubscription(ctx context.Context, account int64, endpoint string) error
}

// MaxPushSubscriptions is how many devices of one account are pushed to;
// a new subscription past it replaces the oldest.
const MaxPushSubscriptions = 10

var (
	errGuestPush = errors.New("sign in to get notifications")
	errNoPushSub = errors.New("no such subscription of yours")
	// errPushStarting: a cluster's node has not yet agreed the cluster's
	// key with the others.
	errPushStarting = errors.New("notifications are starting on this server: try again in a moment")
)

// addPushRoutes adds the Web Push routes, when push is on.
func addPushRoutes(mux *http.ServeMux, d Deps) {
	change := guardJSON(d)
	limited := limitRoomChanges(d, chat.NewKeyedLimiter(rate.Every(roomChangeEvery), roomChangeBurst))
	p := &pushRoutes{log: d.Log, push: d.Push, store: d.Store, who: d.Auth}
	mux.Handle("GET /push/key", http.HandlerFunc(p.key))
	mux.Handle("POST /push/subscriptions", limited(change(p.subscribe)))
	mux.Handle("DELETE /push/subscriptions", limited(change(p.unsubscribe)))
}

type pushRoutes struct {
	log   *slog.Logger
	push  PushService
	store pushStore
	who   identifier
}

func (p *pushRoutes) key(w http.ResponseWriter, r *http.Request) {
	key := p.push.PublicKey()
	if key == "" {
		writeError(w, r, p.log, http.StatusServiceUnavailable, errPushStarting)
		return
	}
	encode(w, http.StatusOK, map[string]string{"key": key})
}

// subscriptionBody is a browser's PushSubscription.toJSON().
type subscriptionBody struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
	ExpirationTime *float64 `json:"expirationTime"` // sent by browsers; not used
}

// signedIn is the request's person, or a 401 for a guest (and for an
// admin's password session, which is no account's).
func (p *pushRoutes) signedIn(w http.ResponseWriter, r *http.Request) (chat.Identity, bool) {
	id := p.who.Identity(r)
	if id.Guest() || id.Session == 0 {
		writeError(w, r, p.log, http.StatusUnauthorized, errGuestPush)
		return id, false
	}
	return id, true
}

func (p *pushRoutes) subscribe(w http.ResponseWriter, r *http.Request) {
	id, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	var body subscriptionBody
	if err := readJSON(w, r, &body, `{"endpoint": "https://...", "keys": {"p256dh": string, "auth": string}}`); err != nil {
		writeBodyError(w, r, p.log, err)
		return
	}
	if err := p.push.CheckSubscription(body.Endpoint, body.Keys.P256dh, body.Keys.Auth); err != nil {
		writeError(w, r, p.log, http.StatusBadRequest, err)
		return
	}
	sub := db.PushSubscription{SessionID: id.Session, AccountID: id.UserID, Endpoint: body.Endpoint,
		P256dh: body.Keys.P256dh, Auth: body.Keys.Auth, Created: time.Now()}
	if err := p.store.SavePushSubscription(r.Context(), sub, MaxPushSubscriptions); err != nil {
		writeError(w, r, p.log, http.StatusServiceUnavailable, err)
		return
	}
	encode(w, http.StatusCreated, map[string]string{"endpoint": body.Endpoint})
}

type unsubscribeBody struct {
	Endpoint string `json:"endpoint"`
}

func (p *pushRoutes) unsubscribe(w http.ResponseWriter, r *http.Request) {
	id, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	var body unsubscribeBody
	if err := readJSON(w, r, &body, `{"endpoint": string}`); err != nil {
		writeBodyError(w, r, p.log, err)
		return
	}
	err := p.store.DeletePushSubscription(r.Context(), id.UserID, body.Endpoint)
	switch {
	case errors.Is(err, db.ErrNotFound):
		writeError(w, r, p.log, http.StatusNotFound, errNoPushSub)
	case err != nil:
		writeError(w, r, p.log, http.StatusServiceUnavailable, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

type notifyBody struct {
	Level string `json:"level"`
}

// notify is PUT /rooms/{slug}/notify: what of the room its member is told
// of while away.
func (rr *roomRoutes) notify(w http.ResponseWriter, r *http.Request) {
	if rr.who.Identity(r).Guest() {
		writeError(w, r, rr.log, http.StatusUnauthorized, errGuestPush)
		return
	}
	room, id, _, ok := rr.room(w, r)
	if !ok {
		return
	}
	var body notifyBody
	if err := readJSON(w, r, &body, `{"level": "all"|"mentions"|"none"}`); err != nil {
		writeBodyError(w, r, rr.log, err)
		return
	}
	if err := rr.hub.SetNotify(r.Context(), id, room, body.Level); err != nil {
		writeError(w, r, rr.log, sendStatus(err), err)
		return
	}
	encode(w, http.StatusOK, notifyBody{Level: body.Level})
}
