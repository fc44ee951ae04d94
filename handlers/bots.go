package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"nochat/chat"
	"nochat/db"
)

// The token API: a bot (an account with db.RoleBot, made by an admin)
// sends "Authorization: Bearer nochat_bot_..." on the people's rooms API
// and on the nochat.v1 WebSocket. Its token is checked against the
// database at every request, so a token that the dashboard or `nochat
// bot` (another process) rotated or revoked opens nothing from that
// commit on; its open sockets are closed by WatchBotTokens.

// BotTokenPrefix begins every bot token, so that one pasted in the wrong
// place is recognisable (and secret scanners can find it).
const BotTokenPrefix = "nochat_bot_"

// botPrefixChars is how much of a token the dashboard shows: the fixed
// prefix and 6 characters of the random part, to tell tokens apart.
const botPrefixChars = len(BotTokenPrefix) + 6

// NewBotToken returns a new random bot token (tokenBytes of randomness),
// the SHA-256 the database keeps of it, and the prefix shown for it.
func NewBotToken() (token string, hash []byte, prefix string) {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	token = BotTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, tokenHash(token), token[:botPrefixChars]
}

// wellFormedBotToken reports whether v can be a bot token.
func wellFormedBotToken(v string) bool {
	rest, ok := strings.CutPrefix(v, BotTokenPrefix)
	return ok && wellFormedToken(rest)
}

// botContextKey keys the bot a request's token opened (botAuth).
type botContextKey struct{}

// botAuth is a bot account and the SHA-256 of the token that opened it.
type botAuth struct {
	db.Account
	tokenHash []byte
}

// botOf is the bot account r's Bearer token opened, if any.
func botOf(r *http.Request) (db.Account, bool) {
	a, ok := r.Context().Value(botContextKey{}).(botAuth)
	return a.Account, ok
}

// botRoutes are the routes a bot may call: its rooms, their history,
// and its messages. Every other route answers a bot 403: the account
// pages, admin, set-up and sign-in, room changes (joining, leaving,
// creating, inviting: an admin grants a bot its rooms), the tutorial's
// /discussion routes (the default room, whether granted or not), search,
// files and uploads.
var botRoutes = map[string]bool{
	"GET /{$}":                                   true, // the WebSocket only (see bearerAuth)
	"GET /healthz":                               true,
	"GET /rooms":                                 true,
	"GET /rooms/{slug}":                          true,
	"GET /rooms/{slug}/messages/latest/{n}":      true,
	"GET /rooms/{slug}/messages":                 true,
	"GET /rooms/{slug}/messages/{id}":            true,
	"POST /rooms/{slug}/messages":                true,
	"PATCH /rooms/{slug}/messages/{id}":          true,
	"DELETE /rooms/{slug}/messages/{id}":         true,
	"POST /rooms/{slug}/messages/{id}/reactions": true,
}

// botTokenStore is what bearerAuth reads and writes of bots.
type botTokenStore interface {
	BotByToken(ctx context.Context, tokenHash []byte) (db.Account, error)
	TouchBot(ctx context.Context, id int64, now time.Time) error
}

var (
	errBearerMalformed = errors.New("that is not a bot token: send one header, Authorization: Bearer nochat_bot_... (the token exactly as it was shown)")
	errBearerAndCookie = errors.New("send a bot token or a sign-in cookie, not both")
	errBearerWrong     = errors.New("the bot token is wrong, replaced or revoked, or an admin deactivated its bot")
	errBotRoute        = errors.New("a bot may not use this route: bots read and post in their rooms (/rooms) and open the nochat.v1 socket")
)

// bearerSent reports whether an Authorization header is meant for NoChat:
// a Bearer token, or a bot's token under another scheme or none (refused,
// saying how to send it). Other credentials are not NoChat's to judge: a
// login a proxy asks for in front of it (Basic) comes with every request.
func bearerSent(values []string) bool {
	for _, v := range values {
		v = strings.TrimSpace(v)
		scheme, rest, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "Bearer") || strings.HasPrefix(v, BotTokenPrefix) || strings.HasPrefix(strings.TrimSpace(rest), BotTokenPrefix) {
			return true
		}
	}
	return false
}

// bearerAuth lets a request with a bot's token through to routes a bot
// may use, as that bot (see Auth.Identity); requests without one pass as
// they are (bearerSent). A token needs no origin check: a browser never
// sends one by itself, so another site's page cannot make it (the rooms
// routes check origins anyway).
func bearerAuth(d Deps, mux *http.ServeMux, next http.Handler) http.Handler {
	if d.Auth == nil {
		return next
	}
	var (
		mu      sync.Mutex
		touched = make(map[int64]time.Time) // last-used times written, one per bot
	)
	unauthorized := func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="nochat"`)
		writeError(w, r, d.Log, http.StatusUnauthorized, err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		// An incoming webhook's secret is in its URL: credentials a tool
		// sends with it (Home Assistant's basic auth, say) are not read.
		if !bearerSent(values) || strings.HasPrefix(r.URL.Path, "/hooks/") {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, _ := strings.Cut(values[0], " ")
		token = strings.TrimSpace(token)
		switch {
		case len(values) > 1 || !strings.EqualFold(scheme, "Bearer") || !wellFormedBotToken(token):
			unauthorized(w, r, errBearerMalformed)
			return
		case r.Header.Get("Cookie") != "":
			unauthorized(w, r, errBearerAndCookie)
			return
		}
		hash := tokenHash(token)
		bot, err := d.Auth.store.BotByToken(r.Context(), hash)
		if errors.Is(err, db.ErrNotFound) {
			unauthorized(w, r, errBearerWrong)
			return
		}
		if err != nil {
			writeError(w, r, d.Log, http.StatusServiceUnavailable, err)
			return
		}
		if _, pattern := mux.Handler(r); !botRoutes[pattern] || pattern == "GET /{$}" && !chat.IsUpgrade(r) {
			writeError(w, r, d.Log, http.StatusForbidden, errBotRoute)
			return
		}
		now := d.Auth.now()
		mu.Lock()
		stale := now.Sub(touched[bot.ID]) > touchEvery
		if stale {
			touched[bot.ID] = now
		}
		mu.Unlock()
		if stale {
			if err := d.Auth.store.TouchBot(r.Context(), bot.ID, now); err != nil {
				d.Log.Debug("bot last used", "err", err)
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), botContextKey{}, botAuth{bot, hash})))
	})
}

// botTokenWatch is what WatchBotTokens reads.
type botTokenWatch interface {
	BotTokensVersion(ctx context.Context) (int64, error)
	BotTokens(ctx context.Context) (map[int64][]byte, error)
}

// botSocketCloser closes a bot's sockets.
type botSocketCloser interface {
	EndAccount(userID int64, reason string) int
}

// WatchBotTokens closes, within about every, the sockets of each bot
// whose token was rotated or revoked, by whichever process (the
// dashboard, or `nochat bot` from a shell on the same database): a
// trigger moves a counter at every token change, and this reads that one
// row each time. It returns when ctx ends.
func WatchBotTokens(ctx context.Context, store botTokenWatch, hub botSocketCloser, log *slog.Logger, every time.Duration) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	version := int64(-1)
	var known map[int64][]byte
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if v, err := store.BotTokensVersion(ctx); err != nil {
			log.Debug("bot tokens version", "err", err)
		} else if v != version {
			tokens, err := store.BotTokens(ctx)
			if err != nil {
				log.Debug("bot tokens", "err", err)
			} else {
				for id, now := range tokens {
					// A bot made since the last look may have changed its
					// token already: its sockets (if any, a second old at
					// most) close too, and reconnect with the token now.
					if old, ok := known[id]; known != nil && (!ok || !bytes.Equal(old, now)) {
						if n := hub.EndAccount(id, chat.CloseBotRevoked); n > 0 {
							log.Info("closed the sockets of a bot whose token changed", "bot", id, "sockets", n)
						}
					}
				}
				known, version = tokens, v
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
