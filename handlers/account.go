package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// A signed-in person's own page: their name, which they may change; the
// sessions of their account (device, last seen), to end one or every
// other; and their password, whose change ends every other session. Only
// the account's own sessions can be seen or ended: every query is by
// account and session id together.

// placeRename files refused renames in the error log.
const placeRename = "rename"

// accountStore is what the account page reads and changes.
type accountStore interface {
	SessionsOf(ctx context.Context, accountID int64, now time.Time) ([]db.Session, error)
	DeleteSessionOf(ctx context.Context, accountID, id int64) error
	DeleteSessionsOf(ctx context.Context, accountID, keep int64) ([]int64, error)
	ChangePassword(ctx context.Context, id int64, hash string, keep int64) ([]int64, error)
	AccountByNameKey(ctx context.Context, key string) (db.Account, error)
	RenameAccount(ctx context.Context, id int64, name, key string) error
}

// sessionCloser closes the sockets opened under sign-in sessions.
type sessionCloser interface {
	EndSessions(sessions ...int64) int
}

// requirePerson lets a signed-in request through to next with its
// account and session; others go to sign in (a page) or get 401.
func requirePerson(a *Auth, next func(w http.ResponseWriter, r *http.Request, acct db.Account, s db.Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		acct, s, ok := a.Person(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?next=/account", http.StatusSeeOther)
				return
			}
			encode(w, http.StatusUnauthorized, errorBody{Error: "sign in first, at /signin"})
			return
		}
		next(w, r, acct, s)
	})
}

// accountPage renders the page with a problem or a note.
func accountPage(w http.ResponseWriter, r *http.Request, log *slog.Logger, a *Auth, store accountStore, assets views.AdminAssets, acct db.Account, s db.Session, status int, problem string) {
	accountPageWith(w, r, log, a, store, assets, acct, s, status, views.Account{Problem: problem})
}

// accountPageWith renders the page with what page says besides the
// account's own (a problem, a note, the name form's draft).
func accountPageWith(w http.ResponseWriter, r *http.Request, log *slog.Logger, a *Auth, store accountStore, assets views.AdminAssets, acct db.Account, s db.Session, status int, page views.Account) {
	sessions, err := store.SessionsOf(r.Context(), acct.ID, a.now())
	if err != nil {
		writeError(w, r, log, http.StatusInternalServerError, err)
		return
	}
	page.Name, page.UserID, page.Role, page.Sessions, page.Current = acct.Name, acct.ID, acct.Role, sessions, s.ID
	page.MinPassword, page.MaxPassword, page.Now = minPassword, maxPassword, a.now()
	if page.NameDraft == "" {
		page.NameDraft = acct.Name
	}
	render(w, r, log, status, views.AccountPage(assets, page))
}

// handleAccount serves GET /account to a signed-in person.
func handleAccount(log *slog.Logger, a *Auth, store accountStore, names accountNamer, assets views.AdminAssets) http.Handler {
	return requirePerson(a, func(w http.ResponseWriter, r *http.Request, acct db.Account, s db.Session) {
		accountPageWith(w, r, log, a, store, assets, acct, s, http.StatusOK, views.Account{MaxName: names.Limits().MaxNameLen, Done: doneNote(w, r, acct)})
	})
}

// A change made on the account page answers with a redirect to it (303),
// so that a reload shows the page again rather than sending the form
// twice, and the address bar reads /account. What was done goes with the
// redirect in a cookie the page reads once and clears (doneCookie), so
// that a later reload no longer says it. A refusal shows the page with
// the form as it was sent.

// doneCookie says what the account page's last change did: "name" (a
// rename), "password-N" (a new password, N the other sessions signed
// out) or "ended-N" (N sessions signed out). Only /account is sent it,
// for a minute.
const doneCookie = "nochat_done"

// changeDone redirects to the account page, saying what was done.
func changeDone(w http.ResponseWriter, r *http.Request, done string) {
	http.SetCookie(w, &http.Cookie{Name: doneCookie, Value: done, Path: "/account", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// doneNote is what the doneCookie says was just done, and clears it.
// Anything else says nothing.
func doneNote(w http.ResponseWriter, r *http.Request, acct db.Account) string {
	c, err := r.Cookie(doneCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: doneCookie, Path: "/account", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	what, n, _ := strings.Cut(c.Value, "-")
	switch what {
	case "name":
		return "Your name is now " + acct.Name + ". Everyone sees it, on your messages too."
	case "password":
		done := "Your password is changed."
		switch n, err := strconv.Atoi(n); {
		case err != nil || n < 1 || n > maxSessionsListed:
		case n == 1:
			done += " Your other session is signed out."
		default:
			done += " Your other " + strconv.Itoa(n) + " sessions are signed out."
		}
		return done
	case "ended":
		switch n, err := strconv.Atoi(n); {
		case err != nil || n < 0 || n > maxSessionsListed:
		case n == 0:
			return "No other session was signed in."
		case n == 1:
			return "That session is signed out: its pages close, and it must sign in again."
		default:
			return strconv.Itoa(n) + " sessions are signed out: their pages close, and they must sign in again."
		}
	}
	return ""
}

// maxSessionsListed bounds the count a done note repeats from its cookie.
const maxSessionsListed = 1000

// handleEndSession serves POST /account/sessions/{id}/end: it ends one of
// the person's own sessions (their current one signs them out).
func handleEndSession(log *slog.Logger, a *Auth, store accountStore, hub sessionCloser, trustProxy bool) http.Handler {
	return requirePerson(a, func(w http.ResponseWriter, r *http.Request, acct db.Account, s db.Session) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, log, http.StatusBadRequest, errors.New("id must be a session id"))
			return
		}
		switch err := store.DeleteSessionOf(r.Context(), acct.ID, id); {
		case errors.Is(err, db.ErrNotFound):
			writeError(w, r, log, http.StatusNotFound, errors.New("no such session of yours: it may have ended already"))
			return
		case err != nil:
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		hub.EndSessions(id)
		if id == s.ID {
			personSessions.setCookie(w, r, trustProxy, "")
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		changeDone(w, r, "ended-1")
	})
}

// handleEndOtherSessions serves POST /account/sessions/end-others: every
// session of the person's but this one ends.
func handleEndOtherSessions(log *slog.Logger, a *Auth, store accountStore, hub sessionCloser) http.Handler {
	return requirePerson(a, func(w http.ResponseWriter, r *http.Request, acct db.Account, s db.Session) {
		ended, err := store.DeleteSessionsOf(r.Context(), acct.ID, s.ID)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		hub.EndSessions(ended...)
		changeDone(w, r, "ended-"+strconv.Itoa(len(ended)))
	})
}

// handleChangePassword serves POST /account/password: the current
// password (checked under the same limits as a sign-in, so a borrowed
// session cannot guess it faster) and a new one. The change ends every
// other session of the account.
func handleChangePassword(log *slog.Logger, a *Auth, store accountStore, hub interface {
	adminHub
	sessionCloser
}, trustProxy bool, assets views.AdminAssets) http.Handler {
	return requirePerson(a, func(w http.ResponseWriter, r *http.Request, acct db.Account, s db.Session) {
		if !readForm(w, r, hub, trustProxy, placeSignIn, func(r *http.Request, status int, text string) {
			accountPage(w, r, log, a, store, assets, acct, s, status, text)
		}) {
			return
		}
		current, next := r.PostFormValue("current"), r.PostFormValue("new")
		refuse := func(status int, problem string) {
			accountPage(w, r, log, a, store, assets, acct, s, status, problem)
		}
		if err := checkPassword(next); err != nil {
			refuse(http.StatusBadRequest, err.Error())
			return
		}
		now := a.now()
		if len(current) > 4*maxPassword {
			refuse(http.StatusBadRequest, "That is not your current password.")
			return
		}
		if !a.tries.AllowAt(chat.ClientIP(r, trustProxy), now) || !a.accounts.AllowAt(strconv.FormatInt(acct.ID, 10), now) {
			refuse(http.StatusTooManyRequests, tooManyAttempts(w, tryEvery))
			return
		}
		if wait := a.gate.try(now); wait > 0 {
			refuse(http.StatusTooManyRequests, tooManyAttempts(w, wait))
			return
		}
		ok := passwordMatches([]byte(acct.PasswordHash), current)
		a.gate.done(ok)
		if !ok {
			hub.RecordErrorAt(chat.KindBadInput, placeSignIn, "wrong current password at a password change", requestSubject(r, trustProxy))
			refuse(http.StatusUnauthorized, "That is not your current password.")
			return
		}
		hash, err := hashPassword(next)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		ended, err := store.ChangePassword(r.Context(), acct.ID, hash, s.ID)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		hub.EndSessions(ended...)
		changeDone(w, r, "password-"+strconv.Itoa(len(ended)))
	})
}

// renamer is what a rename needs of the hub: the rules for account names,
// telling every open page, and the error log.
type renamer interface {
	accountNamer
	adminHub
	Rename(id int64, name string)
}

// handleRename serves POST /account/name: form field name, the person's
// new name. It is the account's one name, the name others see and the one
// they sign in with: unique as account names are (chat.NameKey), so that
// a rename can never make two people look alike. Renames are limited per
// account (renameEvery, after a few at once), as each is a write and a
// frame to every open page; refusals are not counted. On success every
// open tab of every person shows the new name at once (Hub.Rename): the
// header, presence, and each of the person's messages on the page.
func handleRename(log *slog.Logger, a *Auth, store accountStore, hub renamer, trustProxy bool, assets views.AdminAssets) http.Handler {
	return requirePerson(a, func(w http.ResponseWriter, r *http.Request, acct db.Account, s db.Session) {
		show := func(r *http.Request, status int, draft, problem, done string) {
			accountPageWith(w, r, log, a, store, assets, acct, s, status, views.Account{NameDraft: draft, NameProblem: problem, Done: done, MaxName: hub.Limits().MaxNameLen})
		}
		if !readForm(w, r, hub, trustProxy, placeRename, func(r *http.Request, status int, text string) {
			show(r, status, "", text, "")
		}) {
			return
		}
		name := r.PostFormValue("name")
		draft := chat.Cut(name, 4*hub.Limits().MaxNameLen)
		display, key, err := hub.AccountName(name)
		if err != nil {
			show(r, http.StatusBadRequest, draft, "That name cannot be used: "+err.Error()+".", "")
			return
		}
		if display == acct.Name {
			show(r, http.StatusOK, "", "", "That is your name already.")
			return
		}
		// Another account's name, as names compare, is refused before the
		// write; the unique index still decides a race between two.
		switch other, err := store.AccountByNameKey(r.Context(), key); {
		case err == nil && other.ID != acct.ID:
			show(r, http.StatusConflict, draft, nameTaken, "")
			return
		case err != nil && !errors.Is(err, db.ErrNotFound):
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		// Only renames that happen count: a refused name costs one read.
		if !a.renames.AllowAt(strconv.FormatInt(acct.ID, 10), a.now()) {
			hub.RecordErrorAt(chat.KindRateLimited, placeRename, "too many renames", requestSubject(r, trustProxy))
			show(r, http.StatusTooManyRequests, draft, tooManyAttempts(w, renameEvery), "")
			return
		}
		switch err := store.RenameAccount(r.Context(), acct.ID, display, key); {
		case errors.Is(err, db.ErrNameTaken):
			show(r, http.StatusConflict, draft, nameTaken, "")
			return
		case err != nil:
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		log.Info("an account is renamed", "id", acct.ID, "from", acct.Name, "to", display)
		hub.Rename(acct.ID, display)
		changeDone(w, r, "name")
	})
}
