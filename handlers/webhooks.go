package handlers

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"nochat/chat"
	"nochat/db"
)

// Incoming webhooks: POST /hooks/{id}/{secret} posts into the webhook's
// room as its bot account. Whoever holds the URL may call it (it is a
// tool's, not a browser's): no cookie, no origin is looked at, and the
// answers say nothing of who the caller is. The webhook is read from the
// database at every request, so that one made or deleted by `nochat
// webhook` in another process counts at once.
//
//	200 ok              posted (Slack answers "ok" in plain text too)
//	400 {"error"}       no text, a body it cannot read, a text over -max-message
//	403 {"error"}       the room is archived
//	404 {"error"}       no such webhook, or the wrong secret (the same answer)
//	413 {"error"}       a body over 64 KiB
//	429 {"error"}       over the bot rate (-bot-rate), per webhook

// DefaultWebhookName is the name of a webhook (its bot account) made
// without one.
const DefaultWebhookName = "Webhook"

// webhookNameTries is how many names CreateWebhook tries: name, then
// "name 2" up to "name 9", since each webhook is its own account and
// names are unique.
const webhookNameTries = 9

// webhookTouchEvery bounds how often a webhook's last use is written:
// an SD card wears with every write.
const webhookTouchEvery = time.Minute

var (
	errNoHook         = errors.New("no such webhook (or the secret is wrong)")
	errHookOff        = errors.New("this webhook is turned off: an admin deactivated the account it posts as")
	errHookRoom       = errors.New("a webhook posts into an open or private room that is not archived")
	errHookNameUsed   = errors.New("that name is taken (by a person, a bot or another webhook): choose another")
	errHookPersonName = errors.New("that is a person's name: a webhook posts as a bot of its own, so give it a name of its own")
)

// NewWebhookSecret returns a new random webhook secret (32 bytes,
// base64url) and the SHA-256 the database keeps of it.
func NewWebhookSecret() (secret string, hash []byte) {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, tokenHash(secret)
}

// WebhookPath is the path of webhook id with its secret: the URL to give
// a tool, after the server's address.
func WebhookPath(id int64, secret string) string {
	return "/hooks/" + strconv.FormatInt(id, 10) + "/" + secret
}

// WebhookCurl is a ready-to-paste curl line that posts to url, plain
// text and Slack's JSON.
func WebhookCurl(url string) (plain, json string) {
	return "curl -d 'The washing machine is done' " + url,
		`curl -H 'Content-Type: application/json' -d '{"text": "The *washing machine* is done"}' ` + url
}

// webhookMaker is what making a webhook needs of the database.
type webhookMaker interface {
	CreateWebhook(ctx context.Context, room int64, name, key string, secretHash []byte, by string, now time.Time) (db.Webhook, error)
	AccountByNameKey(ctx context.Context, key string) (db.Account, error)
}

// CreateWebhook makes a webhook for room, posting as a new bot account
// named name (DefaultWebhookName if ""; "name 2" and so on when taken),
// made by by; it returns the webhook and its secret, which is not kept.
// The dashboard, the room owner's API and `nochat webhook create` all
// make webhooks here, with the same checks.
func CreateWebhook(ctx context.Context, store webhookMaker, room db.Room, name, by string, maxNameLen int, now time.Time) (db.Webhook, string, error) {
	if room.Kind == db.KindDirect || room.IsArchived() {
		return db.Webhook{}, "", errHookRoom
	}
	if strings.TrimSpace(name) == "" {
		name = DefaultWebhookName
	}
	display, key, err := chat.CleanAccountName(name, maxNameLen)
	if err != nil {
		return db.Webhook{}, "", err
	}
	// A person's name is not a webhook's, not even numbered ("Mara 2"):
	// its messages would read as hers but for the bot tag. A bot's or
	// another webhook's name is numbered on ("Sensor 2").
	switch acct, err := store.AccountByNameKey(ctx, key); {
	case err == nil && acct.Role != db.RoleBot:
		return db.Webhook{}, "", errHookPersonName
	case err != nil && !errors.Is(err, db.ErrNotFound):
		return db.Webhook{}, "", err
	}
	secret, hash := NewWebhookSecret()
	for i := 1; i <= webhookNameTries; i++ {
		try := display
		if i > 1 {
			try = display + " " + strconv.Itoa(i)
		}
		shown, key, err := chat.CleanAccountName(try, maxNameLen+2)
		if err != nil {
			return db.Webhook{}, "", err
		}
		h, err := store.CreateWebhook(ctx, room.ID, shown, key, hash, by, now)
		if errors.Is(err, db.ErrNameTaken) {
			continue
		}
		return h, secret, err
	}
	return db.Webhook{}, "", errHookNameUsed
}

// hookStore is what the hook route reads and writes.
type hookStore interface {
	WebhookSecret(ctx context.Context, id int64) (db.Webhook, []byte, error)
	TouchWebhook(ctx context.Context, id int64, now time.Time) error
}

// hookHub is what the hook route needs of the hub.
type hookHub interface {
	Room(id int64) (db.Room, bool)
	BotAllowed(id int64) bool
	SendTo(ctx context.Context, id chat.Identity, r db.Room, user, text, key string) (db.Stored, error)
	RecordErrorAt(kind, place, detail, subject string)
}

// placeWebhook is where the error log puts a webhook's refusals.
const placeWebhook = "incoming webhook"

// handleHook serves POST /hooks/{id}/{secret}.
func handleHook(log *slog.Logger, store hookStore, hub hookHub, now func() time.Time) http.Handler {
	var (
		mu      sync.Mutex
		touched = make(map[int64]time.Time) // last-used times written, one per webhook
	)
	// A hash to compare with when there is no such webhook, so that an
	// unknown id costs what a wrong secret does.
	_, nobody := NewWebhookSecret()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		secret := r.PathValue("secret")
		if err != nil || id < 1 || !wellFormedToken(secret) {
			writeError(w, r, log, http.StatusNotFound, errNoHook)
			return
		}
		hook, want, err := store.WebhookSecret(r.Context(), id)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			writeError(w, r, log, http.StatusServiceUnavailable, err)
			return
		}
		if err != nil {
			want = nobody
		}
		if subtle.ConstantTimeCompare(tokenHash(secret), want) != 1 || hook.ID == 0 {
			writeError(w, r, log, http.StatusNotFound, errNoHook)
			return
		}
		if hook.Off {
			hub.RecordErrorAt(chat.KindBadInput, placeWebhook, "a post to a webhook whose account is deactivated", hook.Name)
			writeError(w, r, log, http.StatusForbidden, errHookOff)
			return
		}
		room, ok := hub.Room(hook.Room)
		if !ok {
			writeError(w, r, log, http.StatusNotFound, errNoHook)
			return
		}
		if !hub.BotAllowed(hook.AccountID) {
			hub.RecordErrorAt(chat.KindRateLimited, placeWebhook, "a webhook's posts over the bot rate limit", hook.Name)
			w.Header().Set("Retry-After", "1")
			writeError(w, r, log, http.StatusTooManyRequests, chat.ErrRateLimited)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, r, log, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", tooBig.Limit))
				return
			}
			writeError(w, r, log, http.StatusBadRequest, fmt.Errorf("read body: %v", err))
			return
		}
		text, username, err := hookText(r.Header.Get("Content-Type"), body)
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		// NoChat's names are accounts': a tool's username cannot take
		// one (nor a person's), so it leads the text, in bold, when it
		// says more than the webhook's own name.
		if u := strings.TrimSpace(strings.ReplaceAll(username, "*", "")); u != "" && !strings.EqualFold(u, hook.Name) {
			text = "**" + chat.Cut(u, 64) + "**: " + text
		}
		bot := chat.Identity{UserID: hook.AccountID, Name: hook.Name, Role: db.RoleBot}
		if _, err := hub.SendTo(r.Context(), bot, room, "", text, ""); err != nil {
			writeError(w, r, log, sendStatus(err), err)
			return
		}
		t := now()
		mu.Lock()
		stale := t.Sub(touched[hook.ID]) > webhookTouchEvery
		if stale {
			touched[hook.ID] = t
		}
		mu.Unlock()
		if stale {
			if err := store.TouchWebhook(r.Context(), hook.ID, t); err != nil {
				log.Debug("webhook last used", "err", err)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
}
