package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/time/rate"

	"nochat/chat"
)

var errCrossOrigin = errors.New("cross-origin request refused: this action must come from this server's own pages")

// guardSend protects the REST send routes: a page on another site may not
// post in its visitors' names (unless allowed with -allow-origin), each
// client address may send at most SendRate messages a second, over all the
// routes it guards together, and a guest's sends count toward the limit its
// address's guests share with their sockets (chat.Hub.AllowGuestSend).
func guardSend(d Deps) func(http.Handler) http.Handler {
	var limiter *chat.KeyedLimiter
	if d.SendRate > 0 {
		limiter = chat.NewKeyedLimiter(rate.Limit(d.SendRate), max(1, d.SendBurst))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !chat.OriginAllowed(r, d.AllowOrigins) {
				d.Hub.RecordErrorAt(chat.KindBadOrigin, placeRESTSend, fmt.Sprintf("origin %.100s may not send here", r.Header.Get("Origin")), requestSubject(r, d.TrustProxy))
				writeError(w, r, d.Log, http.StatusForbidden, errCrossOrigin)
				return
			}
			if bot, ok := botOf(r); ok {
				// A bot's limit is its own (-bot-rate), not its address's:
				// several bots and people may share one machine.
				if !d.Hub.BotAllowed(bot.ID) {
					d.Hub.RecordErrorAt(chat.KindRateLimited, placeRESTSend, "a bot's sends over the bot rate limit", bot.Name)
					w.Header().Set("Retry-After", "1")
					writeError(w, r, d.Log, http.StatusTooManyRequests, chat.ErrRateLimited)
					return
				}
			} else if ip := chat.ClientIP(r, d.TrustProxy); limiter != nil && !limiter.Allow(ip) {
				d.Hub.RecordErrorAt(chat.KindRateLimited, placeRESTSend, "REST sends over the rate limit", requestSubject(r, d.TrustProxy))
				w.Header().Set("Retry-After", "1")
				writeError(w, r, d.Log, http.StatusTooManyRequests, chat.ErrRateLimited)
				return
			} else if (d.Auth == nil || d.Auth.Identity(r).Guest()) && !d.Hub.AllowGuestSend(ip) {
				// A guest's REST sends draw from the limit its address's
				// guests share with their sockets: both ways together are
				// no faster than the sockets alone.
				d.Hub.RecordErrorAt(chat.KindRateLimited, placeRESTSend, "a guest address's sends over the limit its guests share", requestSubject(r, d.TrustProxy))
				w.Header().Set("Retry-After", "1")
				writeError(w, r, d.Log, http.StatusTooManyRequests, chat.ErrRateLimited)
				return
			}
			allowOrigin(w, r, d.AllowOrigins)
			next.ServeHTTP(w, r)
		})
	}
}

// allowCORS lets pages from the allowed origins read a route's answers.
func allowCORS(allow []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowOrigin(w, r, allow)
		next.ServeHTTP(w, r)
	})
}

func allowOrigin(w http.ResponseWriter, r *http.Request, allow []string) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(allow) == 0 {
		return
	}
	w.Header().Add("Vary", "Origin")
	switch {
	case slices.Contains(allow, "*"):
		w.Header().Set("Access-Control-Allow-Origin", "*")
	case slices.Contains(allow, origin):
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
}
