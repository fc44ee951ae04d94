package handlers

import (
	"errors"
	"net/http"

	"nochat/chat"
)

// A ban refuses the addresses its person used, by chat.AddressKey (an
// IPv4 address, an IPv6 /64, as the connection limits count them): every
// request from one, page, REST or WebSocket, is answered 403 before it
// reaches a route. /healthz stays open, for the monitor on the Pi itself.

// errBanned is what a banned address is told.
var errBanned = errors.New("this address is banned from this chat by its admins")

// SetBanned refuses the addresses (on), by chat.AddressKey, or stops
// refusing them: a ban through this node, or, on a cluster, through
// another one (chat.Options.Bans).
func (a *Auth) SetBanned(addresses []string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range addresses {
		if on {
			a.banned[k] = true
		} else {
			delete(a.banned, k)
		}
	}
}

// Banned reports whether a ban refuses the client address ip.
func (a *Auth) Banned(ip string) bool {
	if a == nil {
		return false
	}
	k := chat.AddressKey(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.banned) > 0 && a.banned[k]
}

// refuseBanned answers 403 to a request from a banned address.
func refuseBanned(d Deps, next http.Handler) http.Handler {
	if d.Auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && d.Auth.Banned(chat.ClientIP(r, d.TrustProxy)) {
			d.Hub.RecordErrorAt(chat.KindBadInput, placeBanned, "a banned address was refused", requestSubject(r, d.TrustProxy))
			w.Header().Set("Cache-Control", "no-store")
			writeError(w, r, d.Log, http.StatusForbidden, errBanned)
			return
		}
		next.ServeHTTP(w, r)
	})
}
