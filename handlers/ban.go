package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// A ban refuses the addresses its person used, by chat.AddressKey (an
// IPv4 address, an IPv6 /64, as the connection limits count them): every
// request from one, page, REST or WebSocket, is answered 403 before it
// reaches a route. /healthz and the assets stay open.

// errBanned is what a banned address is told.
var errBanned = errors.New("this address is banned from this chat by its admins")

// Refusals is how often this node refused a banned address since it
// started (or since the ban, if later), and when it last did.
type Refusals struct {
	N    int64
	Last time.Time
}

// SetBanned refuses the addresses (on), by chat.AddressKey, or stops
// refusing them: a ban through this node, or, on a cluster, through
// another one (chat.Options.Bans).
func (a *Auth) SetBanned(addresses []string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range addresses {
		a.setBanned(k, on)
	}
}

// setBanned refuses the address key k (on) or stops refusing it; a.mu is
// held.
func (a *Auth) setBanned(k string, on bool) {
	if !on {
		delete(a.banned, k)
	} else if a.banned[k] == nil {
		a.banned[k] = &Refusals{}
	}
}

// bansChanged refuses the addresses a change of the bans just wrote (on)
// or stops refusing them, at once, and then as the database has them,
// read back after the write, one such read at a time. Two changes of one
// address racing (a ban and its lift by two admins, or through two nodes)
// may reach the map in another order than the database took them; the
// read after the last of them leaves this node refusing exactly what the
// database bans, so that a lifted ban does not go on refusing with no ban
// left to lift, nor a ban refuse nobody.
func (a *Auth) bansChanged(ctx context.Context, addresses []string, on bool) {
	if len(addresses) == 0 {
		return
	}
	a.SetBanned(addresses, on)
	a.readBansBack(ctx, addresses)
}

// readBansBack sets the addresses refused or not as the database has them
// now; one such read at a time.
func (a *Auth) readBansBack(ctx context.Context, addresses []string) {
	a.banReads.Lock()
	defer a.banReads.Unlock()
	banned, err := a.store.BannedAmong(context.WithoutCancel(ctx), addresses)
	if err != nil {
		a.log.Warn("could not read back the bans just changed: this node refuses them as changed until it restarts", "addresses", addresses, "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range addresses {
		a.setBanned(k, slices.Contains(banned, k))
	}
}

// BansChanged is bansChanged for a change made through another node of a
// cluster (chat.Options.Bans, on the broadcaster's goroutine): the map at
// once, the read back on a goroutine of its own, which Wait waits for.
func (a *Auth) BansChanged(addresses []string, on bool) {
	a.SetBanned(addresses, on)
	a.readingBack.Go(func() { a.readBansBack(context.Background(), addresses) })
}

// Wait waits for the reads back that BansChanged started: at shutdown,
// once the hub has closed (nothing calls BansChanged after that) and
// before the store closes under them.
func (a *Auth) Wait() {
	a.readingBack.Wait()
}

// Banned reports whether a ban refuses the client address ip, and counts
// the refusal.
func (a *Auth) Banned(ip string) bool {
	if a == nil {
		return false
	}
	k := chat.AddressKey(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.banned) == 0 {
		return false
	}
	r := a.banned[k]
	if r == nil {
		return false
	}
	r.N++
	r.Last = a.now()
	return true
}

// RefusalsOf is how often this node refused the banned address key (a
// chat.AddressKey), and when it last did.
func (a *Auth) RefusalsOf(key string) Refusals {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.banned[key]; r != nil {
		return *r
	}
	return Refusals{}
}

// refuseBanned answers 403 to a request from a banned address: a page
// saying so to a browser, {"error"} to a script. The assets stay served
// (the page's style sheet and icon hold nobody's data), and /healthz, for
// the monitor on the Pi itself. A refusal is no error of the server's: the
// dashboard's list of bans counts them.
func refuseBanned(d Deps, next http.Handler) http.Handler {
	if d.Auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/static/") || !d.Auth.Banned(chat.ClientIP(r, d.TrustProxy)) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" && strings.Contains(r.Header.Get("Accept"), "text/html") && d.Assets != nil {
			render(w, r, d.Log, http.StatusForbidden, views.BannedPage(cardAssetsOf(d.Assets)))
			return
		}
		writeError(w, r, d.Log, http.StatusForbidden, errBanned)
	})
}

// An admin bans an address from the dashboard's list of connections: a
// guest's, who has no account to ban, and who came back at once after a
// disconnect. The address is refused, by chat.AddressKey, on every node
// of a cluster (the ban is a command of its log), and every page open
// from it closes, signed-in people's too: the dashboard's question says
// how many. An admin lifts any refused address from the list of bans,
// one of a banned account's too (a banned person on a shared router's
// address), which leaves the account banned.

// maxBanName bounds the name a ban is listed under (a guest's name is
// at most chat.Options.MaxNameLen, 32 by default).
const maxBanName = 64

// bansShown is how many refused addresses the dashboard lists, the
// newest first.
const bansShown = 100

// Refusals of the address-ban routes.
var (
	errBanAddress    = errors.New("address must be an IP address, or an IPv6 /64 as the list of bans shows it")
	errBanName       = errors.New("name is not one a guest could have")
	errBanOwnAddress = errors.New("that is your own address: banning it would lock you out of this dashboard")
	errBanLoopback   = errors.New("that is this machine's own address: banning it would refuse whoever connects on the machine itself, through a proxy on it, or as an admin over its other address")
	errBannedAddress = errors.New("that address is banned already")
	errNoBan         = errors.New("no ban refuses that address: it may have been lifted already")
)

// addressBanStore keeps the refused addresses.
type addressBanStore interface {
	BanAddress(ctx context.Context, address, name string, now time.Time) error
	UnbanAddress(ctx context.Context, address string) error
	AddressBanOf(ctx context.Context, address string) (db.AddressBan, error)
}

// addressCloser closes the pages open from addresses.
type addressCloser interface {
	CloseAddresses(addresses []string, reason string) int
}

// banAddressKey reads an address an admin names (an IP address, or an
// IPv6 /64 prefix) as the chat.AddressKey a ban refuses.
func banAddressKey(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return chat.AddressKey(a.String()), true
	}
	if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() && p.Bits() == 64 {
		return p.Masked().String(), true
	}
	return "", false
}

// loopback reports whether the address key is this machine's own (an IPv4
// loopback address, or the /64 that holds ::1). Its own address is never
// banned: an admin on [::1] would otherwise lock out the admin on
// 127.0.0.1, and everyone behind a proxy NoChat does not trust.
func loopback(key string) bool {
	if a, err := netip.ParseAddr(key); err == nil {
		return a.IsLoopback() || a.IsUnspecified()
	}
	p, err := netip.ParsePrefix(key)
	return err == nil && (p.Contains(netip.IPv6Loopback()) || p.Contains(netip.IPv6Unspecified()))
}

// handleBanAddress serves POST /admin/bans (admins only): form field
// address, the address to refuse, and name, whom it is banned for (the
// guest's name, for the list of bans; may be empty).
func handleBanAddress(log *slog.Logger, a *Auth, store addressBanStore, hub addressCloser, trustProxy bool, live http.Handler, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		key, ok := banAddressKey(r.PostFormValue("address"))
		if !ok {
			writeError(w, r, log, http.StatusBadRequest, errBanAddress)
			return
		}
		name := r.PostFormValue("name")
		if strings.TrimSpace(name) != "" {
			var err error
			if name, err = chat.CleanName(name, maxBanName); err != nil {
				writeError(w, r, log, http.StatusBadRequest, fmt.Errorf("%w: %w", errBanName, err))
				return
			}
		}
		if key == chat.AddressKey(chat.ClientIP(r, trustProxy)) {
			writeError(w, r, log, http.StatusForbidden, errBanOwnAddress)
			return
		}
		if loopback(key) {
			writeError(w, r, log, http.StatusForbidden, errBanLoopback)
			return
		}
		switch err := store.BanAddress(r.Context(), key, name, a.now()); {
		case errors.Is(err, db.ErrAddressBanned):
			writeError(w, r, log, http.StatusConflict, errBannedAddress)
			return
		case err != nil:
			writeError(w, r, log, refusalStatus(err), err)
			return
		}
		a.bansChanged(r.Context(), []string{key}, true)
		closed := hub.CloseAddresses([]string{key}, chat.CloseAddressBanned)
		audit(r, auditBanAddress, banTarget(db.AddressBan{Address: key, Name: name}), pagesClosed(closed))
		afterAction(w, r, live)
	})
}

// banTarget names a ban in the audit list: its address, and whom it is
// for.
func banTarget(b db.AddressBan) string {
	switch {
	case b.AccountID != 0:
		return b.Address + " (" + b.Name + "'s ban)"
	case b.Name != "":
		return b.Address + " (" + b.Name + ")"
	}
	return b.Address
}

// handleUnbanAddress serves POST /admin/bans/lift (admins only): form
// field address, a refused address, which is refused no more.
func handleUnbanAddress(log *slog.Logger, a *Auth, store addressBanStore, live http.Handler, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		key, ok := banAddressKey(r.PostFormValue("address"))
		if !ok {
			writeError(w, r, log, http.StatusBadRequest, errBanAddress)
			return
		}
		// Whom it was for, for the audit line; read first, as the lift
		// deletes it.
		was, err := store.AddressBanOf(r.Context(), key)
		if err == nil {
			err = store.UnbanAddress(r.Context(), key)
		}
		switch {
		case errors.Is(err, db.ErrNotFound):
			writeError(w, r, log, http.StatusNotFound, errNoBan)
			return
		case err != nil:
			writeError(w, r, log, refusalStatus(err), err)
			return
		}
		a.bansChanged(r.Context(), []string{key}, false)
		audit(r, auditUnbanAddress, banTarget(was), "")
		afterAction(w, r, live)
	})
}
