package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"nochat/db"
	"nochat/views"
)

// A password-reset link (/reset/TOKEN), which an admin makes on the
// dashboard and hands over, lets its holder set the account's password
// once: that ends every session of the account and signs the holder in.

// resetStore is what the reset pages read and change.
type resetStore interface {
	SessionByToken(ctx context.Context, tokenHash []byte, now time.Time) (db.Session, error)
	AccountByID(ctx context.Context, id int64) (db.Account, error)
	ResetPassword(ctx context.Context, tokenHash []byte, hash string, now time.Time) (db.Account, []int64, error)
}

// resetHub records what the reset form refuses and closes the sockets of
// the sessions a reset ends.
type resetHub interface {
	adminHub
	sessionCloser
}

// resetAccount is the active account a reset link's token opens, if it
// still opens one.
func resetAccount(ctx context.Context, store resetStore, token string, now time.Time) (db.Account, bool) {
	if !wellFormedToken(token) {
		return db.Account{}, false
	}
	s, err := store.SessionByToken(ctx, tokenHash(token), now)
	if err != nil || s.Kind != db.SessionReset {
		return db.Account{}, false
	}
	acct, err := store.AccountByID(ctx, s.AccountID)
	if err != nil || acct.Deactivated || acct.Role == db.RoleBot {
		return db.Account{}, false
	}
	return acct, true
}

func resetForm(acct db.Account, token, problem string) views.Reset {
	return views.Reset{Name: acct.Name, Action: "/reset/" + token, Problem: problem, MinPassword: minPassword, MaxPassword: maxPassword}
}

// handleResetForm serves GET /reset/{token}, to anyone: the new-password
// form while the link works, else 410 with a page saying why it may not.
func handleResetForm(log *slog.Logger, a *Auth, store resetStore, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the URL
		token := r.PathValue("token")
		acct, ok := resetAccount(r.Context(), store, token, a.now())
		if !ok {
			render(w, r, log, http.StatusGone, views.ResetHelpPage(assets))
			return
		}
		render(w, r, log, http.StatusOK, views.ResetPage(assets, resetForm(acct, token, "")))
	})
}

// handleReset serves POST /reset/{token}: form field password. It sets
// the password, spends the link, ends the account's sessions (closing
// their sockets) and signs this browser in. The token is looked up before
// any password is hashed, so a wrong one costs no more than a lookup.
func handleReset(log *slog.Logger, a *Auth, store resetStore, hub resetHub, trustProxy bool, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		token := r.PathValue("token")
		acct, ok := resetAccount(r.Context(), store, token, a.now())
		if !readForm(w, r, hub, trustProxy, placeSignIn, func(r *http.Request, status int, text string) {
			if !ok {
				render(w, r, log, http.StatusGone, views.ResetHelpPage(assets))
				return
			}
			render(w, r, log, status, views.ResetPage(assets, resetForm(acct, token, text)))
		}) {
			return
		}
		if !ok {
			render(w, r, log, http.StatusGone, views.ResetHelpPage(assets))
			return
		}
		password := r.PostFormValue("password")
		if err := checkPassword(password); err != nil {
			render(w, r, log, http.StatusBadRequest, views.ResetPage(assets, resetForm(acct, token, err.Error())))
			return
		}
		hash, err := hashPassword(password)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		acct, ended, err := store.ResetPassword(r.Context(), tokenHash(token), hash, a.now())
		switch {
		case errors.Is(err, db.ErrNotFound):
			render(w, r, log, http.StatusGone, views.ResetHelpPage(assets)) // used meanwhile
			return
		case err != nil:
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		hub.EndSessions(ended...)
		log.Info("a password was set through a reset link", "name", acct.Name, "id", acct.ID, "sessions ended", len(ended))
		if err := a.startPersonSession(w, r, trustProxy, acct.ID); err != nil {
			log.Error("signing in after a password reset", "err", err)
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}
