package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"golang.org/x/time/rate"

	"nochat/chat"
)

var errCrossOrigin = errors.New("cross-origin request refused: this action must come from this server's own pages")

// sendGuard protects the REST routes that send or change messages: a page
// on another site may not act in its visitors' names (unless allowed with
// -allow-origin); each signed-in person, and each guest's client address,
// may send at most SendRate messages a second over every route it guards
// together; and a guest's sends count toward the limit its address's
// guests share with their sockets (chat.Hub.AllowGuestSend). A bot's
// limit is its own (-bot-rate). One guard serves every such route, so
// that its limit is one per person or address.
type sendGuard struct {
	d       Deps
	limiter *chat.KeyedLimiter // nil: no limit per address
}

func newSendGuard(d Deps) *sendGuard {
	g := &sendGuard{d: d}
	if d.SendRate > 0 {
		g.limiter = chat.NewKeyedLimiter(rate.Limit(d.SendRate), max(1, d.SendBurst))
	}
	return g
}

// sends guards a route that stores a new message.
func (g *sendGuard) sends(next http.Handler) http.Handler { return g.guard(next, true) }

// changes guards a route that changes a message (an edit, a deletion, a
// reaction), which no guest may make.
func (g *sendGuard) changes(next http.Handler) http.Handler { return g.guard(next, false) }

func (g *sendGuard) guard(next http.Handler, sends bool) http.Handler {
	d := g.d
	refuse := func(w http.ResponseWriter, r *http.Request, detail, subject string) {
		d.Hub.RecordErrorAt(chat.KindRateLimited, placeRESTSend, detail, subject)
		w.Header().Set("Retry-After", "1")
		writeError(w, r, d.Log, http.StatusTooManyRequests, chat.ErrRateLimited)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !chat.OriginAllowed(r, d.AllowOrigins) {
			d.Hub.RecordErrorAt(chat.KindBadOrigin, placeRESTSend, fmt.Sprintf("origin %.100s may not send here", r.Header.Get("Origin")), requestSubject(r, d.TrustProxy))
			writeError(w, r, d.Log, http.StatusForbidden, errCrossOrigin)
			return
		}
		if bot, ok := botOf(r); ok {
			// A bot's limit is its own, not its address's: several bots
			// and people may share one machine.
			if !d.Hub.BotAllowed(bot.ID) {
				refuse(w, r, "a bot's sends over the bot rate limit", bot.Name)
				return
			}
		} else {
			// A signed-in person's limit is their account's, a guest's is
			// their address's: a guest sending junk behind a family's
			// router does not use up its members' edits and uploads.
			ip := chat.ClientIP(r, d.TrustProxy)
			var id chat.Identity
			if d.Auth != nil {
				id = d.Auth.Identity(r)
				r = withIdentity(r, id) // the handler asks again
			}
			guest, key := id.Guest(), ip
			if !guest {
				key = "account " + strconv.FormatInt(id.UserID, 10)
			}
			if g.limiter != nil && !g.limiter.Allow(key) {
				refuse(w, r, "REST sends over the rate limit", requestSubject(r, d.TrustProxy))
				return
			}
			if sends && guest && !d.Hub.AllowGuestSend(ip) {
				refuse(w, r, "a guest address's sends over the limit its guests share", requestSubject(r, d.TrustProxy))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func allowOrigin(w http.ResponseWriter, r *http.Request, allow []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(allow) == 0 {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	switch {
	case slices.Contains(allow, "*"):
		h.Set("Access-Control-Allow-Origin", "*")
	case slices.Contains(allow, origin):
		h.Set("Access-Control-Allow-Origin", origin)
	default:
		return false
	}
	// What a script needs of an answer besides its body: a new message's
	// address, when to try again, whether a send was a retry's.
	h.Set("Access-Control-Expose-Headers", "Location, Retry-After, Idempotent-Replayed")
	return true
}

// crossOrigin lets pages on the origins -allow-origin names use the API
// (the REST routes and search), and read its answers, refusals too (a
// 429's Retry-After, a bad token's 401): they are told so at the edge,
// before any route may refuse. It answers their browsers' preflights
// (OPTIONS with Access-Control-Request-Method), so that such a page may
// send what the API asks for: JSON, a bot's token, an Idempotency-Key. It
// allows no credentials: people's cookies are SameSite and go to no other
// site's requests anyway. Anyone may ask; the answer tells no more than
// the allowed origins' answers do. Another origin, or another path, is
// told nothing: its preflight is answered as any OPTIONS is (405), which
// the browser takes as a no.
func crossOrigin(allow []string, next http.Handler) http.Handler {
	if len(allow) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := isREST(r) || r.URL.Path == "/search"
		if !api || !allowOrigin(w, r, allow) || r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Idempotency-Key")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
}
