package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// Admins manage people from the dashboard: roles, deactivation (which
// ends the account's sessions and closes its sockets at once), bans
// (deactivation, the addresses it used refused, and optionally its
// messages deleted), and one-time password-reset links. No admin can act
// on their own account in a way that locks them out, and the last active
// admin account keeps its role. Every action leaves an audit line.

const (
	// resetTTL is how long a password-reset link works: long enough to
	// hand it over, short enough that a forgotten one dies.
	resetTTL = 24 * time.Hour

	// The close reasons an account's open pages show.
	closeDeactivated = chat.CloseDeactivated
	closeBanned      = chat.CloseBanned
)

// resetSessions are password-reset links: a session row per link, its
// token only in the link. One per account: a new link replaces the old.
var resetSessions = sessionKind{kind: db.SessionReset, ttl: resetTTL, max: 1}

// manageStore is what managing people reads and changes.
type manageStore interface {
	AccountByID(ctx context.Context, id int64) (db.Account, error)
	SetRole(ctx context.Context, id int64, role string) (db.Account, error)
	Deactivate(ctx context.Context, id int64, now time.Time) (db.Account, []int64, error)
	Reactivate(ctx context.Context, id int64) (db.Account, error)
	Ban(ctx context.Context, id int64, addresses, spare []string, now time.Time) (db.Account, []int64, []string, error)
	Unban(ctx context.Context, id int64) (db.Account, []string, error)
}

// accountCloser closes an account's sockets and removes its messages.
type accountCloser interface {
	EndAccount(userID int64, reason string) int
	AddressesOf(userID int64) []string
	CloseAddresses(addresses []string, reason string) int
	DeleteMessagesOf(ctx context.Context, userID int64) (int, error)
}

// roleSetter gives an account's open sockets its new role.
type roleSetter interface {
	SetRole(id int64, role string)
}

// Refusals of the people routes.
var (
	errNoPerson      = errors.New("no such account")
	errLastAdmin     = errors.New("that is the last active admin account: make another admin first")
	errSelfRole      = errors.New("you cannot remove your own admin role: another admin can")
	errSelfEnd       = errors.New("you cannot deactivate or ban your own account: another admin can")
	errBannedAccount = errors.New("the account is banned: unban it first")
	errResetInactive = errors.New("the account is deactivated: reactivate it before making a reset link")
	errBadRole       = errors.New("role must be admin or member")
	errBotRole       = errors.New("a bot's role is not changed here")
	errBotReset      = errors.New("a bot has no password: it posts with its token (Bots: New token gives it another)")
	errIsDeactivated = errors.New("the account is deactivated already")
	errIsActive      = errors.New("the account is active already")
	errIsBanned      = errors.New("the account is banned already")
	errNotBanned     = errors.New("the account is not banned")
)

// personAction reads the account in the path's {id} and hands it to act
// with the acting admin's account id (0 for the admin password). What
// act returns refuses the action (its status chosen by refusalStatus).
func personAction(log *slog.Logger, a *Auth, store manageStore, act func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, log, http.StatusBadRequest, errors.New("id must be an account id"))
			return
		}
		acct, err := store.AccountByID(r.Context(), id)
		if errors.Is(err, db.ErrNotFound) {
			writeError(w, r, log, http.StatusNotFound, errNoPerson)
			return
		}
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		me, _ := a.actor(r)
		if err := act(w, r, acct, me); err != nil {
			writeError(w, r, log, refusalStatus(err), err)
		}
	})
}

// refusalStatus is the HTTP status of a people route's refusal.
func refusalStatus(err error) int {
	switch {
	case errors.Is(err, errBadRole), errors.Is(err, errBotRole), errors.Is(err, errBotReset):
		return http.StatusBadRequest
	case errors.Is(err, errSelfRole), errors.Is(err, errSelfEnd):
		return http.StatusForbidden
	case errors.Is(err, errLastAdmin), errors.Is(err, errBannedAccount), errors.Is(err, errResetInactive),
		errors.Is(err, errIsDeactivated), errors.Is(err, errIsActive), errors.Is(err, errIsBanned), errors.Is(err, errNotBanned):
		return http.StatusConflict
	case errors.Is(err, errNoPerson):
		return http.StatusNotFound
	case errors.Is(err, chat.ErrNotShared):
		return http.StatusConflict // a cluster's, of what it does not share
	case errors.Is(err, chat.ErrShutdown), errors.Is(err, chat.ErrUnavailable), errors.Is(err, chat.ErrUnconfirmed), errors.Is(err, chat.ErrStore):
		return http.StatusServiceUnavailable // try again shortly
	}
	return http.StatusInternalServerError
}

// storeRefusal turns the store's refusals into the routes' words.
func storeRefusal(err error) error {
	switch {
	case errors.Is(err, db.ErrLastAdmin):
		return errLastAdmin
	case errors.Is(err, db.ErrBanned):
		return errBannedAccount
	case errors.Is(err, db.ErrNotFound):
		return errNoPerson
	}
	return err
}

// afterPeopleAction answers a people action: {"status":"OK"} for a script
// that asks for JSON, else back to the people list (htmx follows the
// redirect and takes the list from the page), which says what was done
// (peopleDoneCookie, read once by the dashboard's page).
func afterPeopleAction(w http.ResponseWriter, r *http.Request, done string) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		encode(w, http.StatusOK, map[string]string{"status": "OK"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: peopleDoneCookie, Value: url.QueryEscape(chat.Cut(done, maxPeopleDone)), Path: "/admin", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/admin#people", http.StatusSeeOther)
}

// peopleDoneCookie carries what a people action did (its audit line, in
// words) to the dashboard's page the action's redirect leads to, which
// shows it once above the list and clears it: an admin sees that a ban
// spared their own address, or refused none, without reading the audit.
const (
	peopleDoneCookie = "nochat_people_done"
	maxPeopleDone    = 600 // bytes; a ban's list of addresses is cut
)

// peopleDone is what peopleDoneCookie says was just done, and clears it.
func peopleDone(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(peopleDoneCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: peopleDoneCookie, Path: "/admin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	done, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return chat.Cut(done, maxPeopleDone)
}

// counted says n of something in words: "1 session ended", "3 sessions
// ended"; one and many are the singular and the plural of the rest.
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// sessionsEnded says how many sessions ended, in words.
func sessionsEnded(n int) string { return counted(n, "session ended", "sessions ended") }

// pagesClosed says how many open sockets were closed, in words.
func pagesClosed(n int) string { return counted(n, "open page closed", "open pages closed") }

// handleSetRole serves POST /admin/people/{id}/role: form field role,
// admin or member. The account's open pages act in the new role from
// their next frame: a demoted admin's socket no longer deletes others'
// messages.
func handleSetRole(log *slog.Logger, a *Auth, store manageStore, hub roleSetter, audit auditFunc) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		role := r.PostFormValue("role")
		switch {
		case role != db.RoleAdmin && role != db.RoleMember:
			return errBadRole
		case acct.Role == db.RoleBot:
			return errBotRole
		case acct.ID == me && role != db.RoleAdmin:
			return errSelfRole
		}
		if _, err := store.SetRole(r.Context(), acct.ID, role); err != nil {
			return storeRefusal(err)
		}
		hub.SetRole(acct.ID, role)
		if acct.Role != role {
			audit(r, auditRole, acct.Name, acct.Role+" → "+role)
		}
		afterPeopleAction(w, r, acct.Name+" is "+map[string]string{db.RoleAdmin: "an admin", db.RoleMember: "a member"}[role]+" now.")
		return nil
	})
}

// handleDeactivate serves POST /admin/people/{id}/deactivate: the account
// can no longer sign in, its sessions end and its open pages close at
// once, saying why.
func handleDeactivate(log *slog.Logger, a *Auth, store manageStore, hub accountCloser, audit auditFunc) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		switch {
		case acct.ID == me:
			return errSelfEnd
		case acct.Deactivated:
			return errIsDeactivated
		}
		_, ended, err := store.Deactivate(r.Context(), acct.ID, a.now())
		if err != nil {
			return storeRefusal(err)
		}
		closed := hub.EndAccount(acct.ID, closeDeactivated)
		detail := sessionsEnded(len(ended)) + ", " + pagesClosed(closed)
		audit(r, auditDeactivate, acct.Name, detail)
		afterPeopleAction(w, r, acct.Name+" is deactivated: "+detail+".")
		return nil
	})
}

// handleReactivate serves POST /admin/people/{id}/reactivate: a
// deactivated account may sign in again (a banned one is unbanned first).
func handleReactivate(log *slog.Logger, a *Auth, store manageStore, audit auditFunc) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		switch {
		case acct.Banned:
			return errBannedAccount
		case !acct.Deactivated:
			return errIsActive
		}
		if _, err := store.Reactivate(r.Context(), acct.ID); err != nil {
			return storeRefusal(err)
		}
		audit(r, auditReactivate, acct.Name, "may sign in again")
		afterPeopleAction(w, r, acct.Name+" may sign in again.")
		return nil
	})
}

// handleBan serves POST /admin/people/{id}/ban: deactivation, plus the
// addresses of the account's open sockets and sessions refused (never the
// acting admin's own), its pages open from them closed, and with form
// field delete_messages=on every message it stored deleted, from open
// pages too.
func handleBan(log *slog.Logger, a *Auth, store manageStore, hub accountCloser, trustProxy bool, audit auditFunc) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		switch {
		case acct.ID == me:
			return errSelfEnd
		case acct.Banned:
			return errIsBanned
		}
		own := chat.AddressKey(chat.ClientIP(r, trustProxy))
		live := hub.AddressesOf(acct.ID)
		_, ended, banned, err := store.Ban(r.Context(), acct.ID, live, []string{own}, a.now())
		if err != nil {
			return storeRefusal(err)
		}
		a.bansChanged(r.Context(), banned, true)
		closed := hub.EndAccount(acct.ID, closeBanned)
		// Others at those addresses are told of the address, not of an
		// account they do not have.
		closed += hub.CloseAddresses(banned, chat.CloseAddressBanned)
		detail := sessionsEnded(len(ended)) + ", " + pagesClosed(closed)
		if len(banned) > 0 {
			detail += "; addresses refused: " + strings.Join(banned, ", ")
		} else {
			detail += "; no address refused"
		}
		if slices.Contains(live, own) {
			detail += " (" + own + " is spared: it is your own address)"
		}
		if r.PostFormValue("delete_messages") == "on" {
			deleted, err := deleteMessagesOf(r, hub, acct)
			detail += "; " + deleted
			if err != nil {
				audit(r, auditBan, acct.Name, detail)
				return err
			}
		}
		audit(r, auditBan, acct.Name, detail)
		afterPeopleAction(w, r, acct.Name+" is banned: "+detail+".")
		return nil
	})
}

// handleDeleteMessages serves POST /admin/people/{id}/delete-messages:
// every message a banned account stored deleted, from open pages too. It
// is how an admin finishes a ban's deletions that stopped part way (a
// full disk, a restart), or deletes what a ban without them left. An
// account that is not banned is refused (409): banned, it sends nothing
// more while its messages go.
func handleDeleteMessages(log *slog.Logger, a *Auth, store manageStore, hub accountCloser, audit auditFunc) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		if !acct.Banned {
			return errNotBanned
		}
		detail, err := deleteMessagesOf(r, hub, acct)
		audit(r, auditDeleteAll, acct.Name, detail)
		if err != nil {
			return err
		}
		afterPeopleAction(w, r, acct.Name+": "+detail+".")
		return nil
	})
}

// deleteMessagesOf deletes every message acct stored, for r, and says how
// many it deleted, and whether it stopped part way, for the audit line.
// Begun, the deletions go on if the admin leaves.
func deleteMessagesOf(r *http.Request, hub accountCloser, acct db.Account) (string, error) {
	n, err := hub.DeleteMessagesOf(context.WithoutCancel(r.Context()), acct.ID)
	detail := counted(n, "message deleted", "messages deleted")
	if err != nil {
		err = fmt.Errorf("%s, then: %w", detail, err)
		return err.Error(), err
	}
	return detail, nil
}

// handleUnban serves POST /admin/people/{id}/unban: the ban's addresses
// are no longer refused. The account stays deactivated until reactivated.
func handleUnban(log *slog.Logger, a *Auth, store manageStore, audit auditFunc) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		if !acct.Banned {
			return errNotBanned
		}
		_, freed, err := store.Unban(r.Context(), acct.ID)
		if err != nil {
			return storeRefusal(err)
		}
		a.bansChanged(r.Context(), freed, false)
		detail := "no addresses were refused"
		if len(freed) > 0 {
			detail = "addresses no longer refused: " + strings.Join(freed, ", ")
		}
		audit(r, auditUnban, acct.Name, detail+"; still deactivated")
		afterPeopleAction(w, r, acct.Name+" is unbanned: "+detail+". The account stays deactivated until you reactivate it.")
		return nil
	})
}

// handleResetLink serves POST /admin/people/{id}/reset-link: a one-time
// link, valid for resetTTL, that lets its holder set the account's
// password. It replaces the account's earlier link. The answer is the
// dashboard showing the link, this once: only its token's SHA-256 is kept.
func handleResetLink(log *slog.Logger, a *Auth, store manageStore, trustProxy bool, audit auditFunc, show func(views.ResetLink) http.Handler) http.Handler {
	return personAction(log, a, store, func(w http.ResponseWriter, r *http.Request, acct db.Account, me int64) error {
		switch {
		case acct.Role == db.RoleBot:
			return errBotReset
		case acct.Deactivated:
			return errResetInactive
		}
		token, _, err := a.newSession(r, resetSessions, acct.ID, "")
		if err != nil {
			return err
		}
		audit(r, auditResetLink, acct.Name, "valid for 24 hours, once")
		w.Header().Set("Referrer-Policy", "no-referrer")
		show(views.ResetLink{Name: acct.Name, Link: siteURL(r, trustProxy) + "/reset/" + token, Expires: a.now().Add(resetTTL)}).ServeHTTP(w, r)
		return nil
	})
}

// siteURL is NoChat's address as r reached it: scheme and host (checked
// by the Host guard).
func siteURL(r *http.Request, trustProxy bool) string {
	if secureRequest(r, trustProxy) {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// peopleReader reads the list of people.
type peopleReader interface {
	People(ctx context.Context) ([]db.PersonInfo, error)
}

// peopleList is the dashboard's list of people, with each one's open
// sockets from the room's snapshot.
func peopleList(r *http.Request, a *Auth, store peopleReader, room chat.Snapshot) (views.People, error) {
	infos, err := store.People(r.Context())
	if err != nil {
		return views.People{}, err
	}
	online := make(map[int64]int)
	for _, c := range room.Connections {
		if c.UserID != 0 {
			online[c.UserID]++
		}
	}
	me, _ := a.actor(r)
	p := views.People{Me: me, Taken: room.Taken, Items: make([]views.PersonRow, 0, len(infos))}
	for _, info := range infos {
		p.Items = append(p.Items, views.PersonRow{PersonInfo: info, Online: online[info.ID]})
	}
	return p, nil
}

// sessionCreator stores a session, as db.Store does.
type sessionCreator interface {
	CreateSession(ctx context.Context, tokenHash []byte, s db.Session, max int) error
}

// NewResetPath makes a one-time password-reset link for an account, the
// dashboard's kind (valid for resetTTL, once), and returns its path,
// "/reset/TOKEN", to be opened at NoChat's address. `nochat import` makes
// one for each admin: an export carries no password hashes, and with
// admin accounts present the set-up link is retired.
func NewResetPath(ctx context.Context, store sessionCreator, accountID int64, now time.Time) (string, error) {
	token := newToken()
	err := store.CreateSession(ctx, tokenHash(token), db.Session{
		Kind:      resetSessions.kind,
		AccountID: accountID,
		UserAgent: "nochat import",
		Created:   now,
		Expires:   now.Add(resetSessions.ttl),
	}, resetSessions.max)
	if err != nil {
		return "", fmt.Errorf("reset link: %w", err)
	}
	return "/reset/" + token, nil
}
