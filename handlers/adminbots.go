package handlers

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/outhook"
	"nochat/views"
)

// The dashboard's Bots panel: make a bot (its token shown once), give it
// a new token, revoke it, change its rooms. Every route is an admin's
// POST from the dashboard (requireAdmin, sameOrigin), and leaves an audit
// line.
//
//	POST /admin/bots                  make one: form name, room (ids, repeated)
//	POST /admin/bots/{id}/rotate      a new token, shown once; the old one and its sockets end
//	POST /admin/bots/{id}/revoke      no token; its sockets close
//	POST /admin/bots/{id}/rooms       its rooms: form room (ids, repeated)
//	POST /admin/bots/{id}/webhook     its outgoing webhook: form url ("" for none); a new secret, shown once
//	POST /admin/bots/{id}/avatar      its avatar: form avatar, one emoji ("" for its initials)

// Audit actions of the Bots panel (and of `nochat bot`, as "shell").
const (
	auditBotCreate = "bot create"
	auditBotRotate = "bot rotate"
	auditBotRevoke = "bot revoke"
	auditBotRooms  = "bot rooms"
	auditBotHook   = "bot webhook"
	auditBotAvatar = "bot avatar"
)

// maxBotRooms bounds the rooms one form may name.
const maxBotRooms = 200

// botAdminStore is what the Bots panel keeps in the database.
type botAdminStore interface {
	Bots(ctx context.Context) ([]db.Bot, error)
	CreateBot(ctx context.Context, name, key string, rooms []int64, tokenHash []byte, prefix string, now time.Time) (db.Account, error)
	SetBotToken(ctx context.Context, id int64, tokenHash []byte, prefix string) error
	AccountByID(ctx context.Context, id int64) (db.Account, error)
	SetBotWebhook(ctx context.Context, id int64, url, secret string, now time.Time) error
	SetBotAvatar(ctx context.Context, id int64, avatar string) error
}

// botAdminHub is what the Bots panel needs of the hub.
type botAdminHub interface {
	AccountName(name string) (display, key string, err error)
	Room(id int64) (db.Room, bool)
	GrantRooms(ctx context.Context, bot db.Account, rooms []int64) (added, removed []int64, err error)
	EndAccount(userID int64, reason string) int
}

var (
	errNoBot       = errors.New("no such bot")
	errBotRoomList = errors.New("room must be the id of a room a bot may be given (not a direct one), at most 200 of them")
)

// botsList is the Bots panel's data, with a token just made (or none).
func botsList(r *http.Request, store botAdminStore, rooms []db.Room, token views.BotToken, now time.Time) (views.Bots, error) {
	bots, err := store.Bots(r.Context())
	if err != nil {
		return views.Bots{}, err
	}
	b := views.Bots{Items: bots, Taken: now, Token: token}
	for _, room := range rooms {
		if room.Kind != db.KindDirect && !room.IsArchived() {
			b.Rooms = append(b.Rooms, room)
		}
	}
	return b, nil
}

// formRooms reads the form's room ids: each a room a bot may be given.
func formRooms(r *http.Request, hub botAdminHub) ([]int64, error) {
	values := r.PostForm["room"]
	if len(values) > maxBotRooms {
		return nil, errBotRoomList
	}
	var ids []int64
	for _, v := range values {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errBotRoomList
		}
		room, ok := hub.Room(id)
		if !ok || room.Kind == db.KindDirect {
			return nil, errBotRoomList
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// roomSlugs names rooms by slug, for the audit list.
func roomSlugs(hub botAdminHub, ids []int64) string {
	var names []string
	for _, id := range ids {
		if r, ok := hub.Room(id); ok {
			names = append(names, r.Slug)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// afterBotAction answers a bots action that shows no token: {"status":
// "OK"} for a script that asks for JSON, else back to the panel.
func afterBotAction(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		encode(w, http.StatusOK, map[string]string{"status": "OK"})
		return
	}
	http.Redirect(w, r, "/admin#bots", http.StatusSeeOther)
}

// errNoWebhooks refuses a webhook where the server was given no guard.
var errNoWebhooks = errors.New("outgoing webhooks are not available here")

// checkWebhook reports why raw may not be a bot's webhook URL (the SSRF
// rules and -webhook-allow), or nil.
func checkWebhook(r *http.Request, guard *outhook.Guard, raw string) error {
	if guard == nil {
		return errNoWebhooks
	}
	return guard.CheckURL(r.Context(), raw)
}

// handleCreateBot serves POST /admin/bots, and shows the new token once
// (show renders the dashboard with it), with the secret of its webhook if
// the form gave one (form webhook: a URL the guard lets through).
func handleCreateBot(log *slog.Logger, a *Auth, store botAdminStore, hub botAdminHub, guard *outhook.Guard, audit auditFunc, show func(views.BotToken) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			writeError(w, r, log, http.StatusBadRequest, errors.New("the form could not be read"))
			return
		}
		name, key, err := hub.AccountName(r.PostForm.Get("name"))
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		rooms, err := formRooms(r, hub)
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		hook := strings.TrimSpace(r.PostForm.Get("webhook"))
		if hook != "" {
			if err := checkWebhook(r, guard, hook); err != nil {
				writeError(w, r, log, http.StatusBadRequest, err)
				return
			}
		}
		avatar, err := chat.CleanAvatar(r.PostForm.Get("avatar"))
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		token, hash, prefix := NewBotToken()
		bot, err := store.CreateBot(r.Context(), name, key, rooms, hash, prefix, a.now())
		if errors.Is(err, db.ErrNameTaken) {
			writeError(w, r, log, http.StatusConflict, errors.New("that name is taken, by a person or a bot (or one that looks the same)"))
			return
		}
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		if avatar != "" {
			if err := store.SetBotAvatar(r.Context(), bot.ID, avatar); err != nil {
				writeError(w, r, log, http.StatusInternalServerError, err)
				return
			}
		}
		audit(r, auditBotCreate, bot.Name, "rooms: "+roomSlugs(hub, rooms))
		shown := views.BotToken{Name: bot.Name, Token: token}
		if hook != "" {
			shown.Secret = outhook.NewSecret()
			if err := store.SetBotWebhook(r.Context(), bot.ID, hook, shown.Secret, a.now()); err != nil {
				writeError(w, r, log, http.StatusInternalServerError, err)
				return
			}
			audit(r, auditBotHook, bot.Name, "calls "+outhook.Host(hook))
		}
		w.Header().Set("Referrer-Policy", "no-referrer")
		show(shown).ServeHTTP(w, r)
	})
}

// botAction runs act on the bot the path names.
func botAction(log *slog.Logger, store botAdminStore, act func(w http.ResponseWriter, r *http.Request, bot db.Account) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			writeError(w, r, log, http.StatusBadRequest, errors.New("the form could not be read"))
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, log, http.StatusNotFound, errNoBot)
			return
		}
		bot, err := store.AccountByID(r.Context(), id)
		if errors.Is(err, db.ErrNotFound) || err == nil && bot.Role != db.RoleBot {
			writeError(w, r, log, http.StatusNotFound, errNoBot)
			return
		}
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		if err := act(w, r, bot); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, errBotRoomList) || errors.As(err, new(errBadWebhook)) || errors.As(err, new(*chat.Refusal)) {
				status = http.StatusBadRequest
			}
			writeError(w, r, log, status, err)
		}
	})
}

// handleRotateBot serves POST /admin/bots/{id}/rotate: a new token, shown
// once; the old one opens nothing from now on and its sockets close.
func handleRotateBot(log *slog.Logger, store botAdminStore, hub botAdminHub, audit auditFunc, show func(views.BotToken) http.Handler) http.Handler {
	return botAction(log, store, func(w http.ResponseWriter, r *http.Request, bot db.Account) error {
		token, hash, prefix := NewBotToken()
		if err := store.SetBotToken(r.Context(), bot.ID, hash, prefix); err != nil {
			return err
		}
		closed := hub.EndAccount(bot.ID, chat.CloseBotRevoked)
		audit(r, auditBotRotate, bot.Name, "a new token; "+pagesClosed(closed))
		w.Header().Set("Referrer-Policy", "no-referrer")
		show(views.BotToken{Name: bot.Name, Token: token}).ServeHTTP(w, r)
		return nil
	})
}

// handleRevokeBot serves POST /admin/bots/{id}/revoke: no token, and its
// open sockets closed at once.
func handleRevokeBot(log *slog.Logger, store botAdminStore, hub botAdminHub, audit auditFunc) http.Handler {
	return botAction(log, store, func(w http.ResponseWriter, r *http.Request, bot db.Account) error {
		if err := store.SetBotToken(r.Context(), bot.ID, nil, ""); err != nil {
			return err
		}
		closed := hub.EndAccount(bot.ID, chat.CloseBotRevoked)
		audit(r, auditBotRevoke, bot.Name, "no token; "+pagesClosed(closed))
		afterBotAction(w, r)
		return nil
	})
}

// handleBotRooms serves POST /admin/bots/{id}/rooms: the bot's rooms are
// the form's, and no others.
func handleBotRooms(log *slog.Logger, store botAdminStore, hub botAdminHub, audit auditFunc) http.Handler {
	return botAction(log, store, func(w http.ResponseWriter, r *http.Request, bot db.Account) error {
		rooms, err := formRooms(r, hub)
		if err != nil {
			return err
		}
		added, removed, err := hub.GrantRooms(r.Context(), bot, rooms)
		if err != nil {
			return err
		}
		audit(r, auditBotRooms, bot.Name, "added: "+roomSlugs(hub, added)+"; removed: "+roomSlugs(hub, removed))
		afterBotAction(w, r)
		return nil
	})
}

// handleBotWebhook serves POST /admin/bots/{id}/webhook: the bot's
// outgoing webhook is the form's url, with a new secret shown once; an
// empty url takes the webhook away.
func handleBotWebhook(log *slog.Logger, a *Auth, store botAdminStore, guard *outhook.Guard, audit auditFunc, show func(views.BotToken) http.Handler) http.Handler {
	return botAction(log, store, func(w http.ResponseWriter, r *http.Request, bot db.Account) error {
		hook := strings.TrimSpace(r.PostForm.Get("url"))
		if hook == "" {
			if err := store.SetBotWebhook(r.Context(), bot.ID, "", "", a.now()); err != nil {
				return err
			}
			audit(r, auditBotHook, bot.Name, "none")
			afterBotAction(w, r)
			return nil
		}
		if err := checkWebhook(r, guard, hook); err != nil {
			return errBadWebhook{err}
		}
		secret := outhook.NewSecret()
		if err := store.SetBotWebhook(r.Context(), bot.ID, hook, secret, a.now()); err != nil {
			return err
		}
		audit(r, auditBotHook, bot.Name, "calls "+outhook.Host(hook)+"; a new secret")
		w.Header().Set("Referrer-Policy", "no-referrer")
		show(views.BotToken{Name: bot.Name, Secret: secret}).ServeHTTP(w, r)
		return nil
	})
}

// handleBotAvatar serves POST /admin/bots/{id}/avatar: the bot's avatar
// is the form's emoji, or its initials again for none. Its messages show
// it, those sent before too.
func handleBotAvatar(log *slog.Logger, store botAdminStore, audit auditFunc) http.Handler {
	return botAction(log, store, func(w http.ResponseWriter, r *http.Request, bot db.Account) error {
		avatar, err := chat.CleanAvatar(r.PostForm.Get("avatar"))
		if err != nil {
			return err
		}
		if err := store.SetBotAvatar(r.Context(), bot.ID, avatar); err != nil {
			return err
		}
		audit(r, auditBotAvatar, bot.Name, cmp.Or(avatar, "its initials"))
		afterBotAction(w, r)
		return nil
	})
}

// errBadWebhook is a webhook URL refused: the admin's to fix (400).
type errBadWebhook struct{ error }
