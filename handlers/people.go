package handlers

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// People sign in to accounts. The first account, an admin, is made through
// a one-time set-up link that NoChat logs while it has no admin; people's
// sessions are stored like the admin password's, under the SHA-256 of a
// random token held in the browser's personCookie.

const (
	// personCookie holds a person's session token.
	personCookie = "nochat_session"
	// personTTL is how long a sign-in lasts: people sign in on a phone
	// once, not every morning.
	personTTL = 30 * 24 * time.Hour
	// maxPersonSessions bounds one account's live sessions: one more
	// sign-in ends the oldest.
	maxPersonSessions = 32
	// Passwords: long enough that guessing one past the sign-in limits is
	// hopeless, and short enough that hashing one (see passwordBytes)
	// costs nothing a form could abuse.
	minPassword = 8
	maxPassword = 1024

	// placeSignIn files sign-in's refusals in the error log.
	placeSignIn = "sign-in"
)

// readForm reads r's form under the body limit. When it cannot (too
// large, or too slow for the edge's deadline), it records that at place,
// answers with the page that show makes of a reason and returns false: no
// password came, so no attempt is counted.
func readForm(w http.ResponseWriter, r *http.Request, hub adminHub, trustProxy bool, place string, show func(*http.Request, int, string)) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	err := r.ParseForm()
	if err == nil {
		return true
	}
	status, text := http.StatusBadRequest, "The form could not be read. Try again."
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTimeout):
		status, text = http.StatusRequestTimeout, "The form took too long to arrive. Try again."
	case errors.As(err, &tooBig):
		status, text = http.StatusRequestEntityTooLarge, "The form is too large."
	}
	hub.RecordErrorAt(chat.KindBadInput, place, "form not read: "+err.Error(), requestSubject(r, trustProxy))
	w.Header().Set("Connection", "close") // what is left of the body is not read
	// A failed body read may have cancelled the request's context; the
	// answer is still worth sending.
	show(r.WithContext(context.WithoutCancel(r.Context())), status, text)
	return false
}

// Person returns the account r is signed in to, with its session. A
// deactivated account is signed in to nothing, and so is a bot's (it has
// a token, never a session: one made before bots were refused a password
// does not count).
func (a *Auth) Person(r *http.Request) (db.Account, db.Session, bool) {
	if a == nil {
		return db.Account{}, db.Session{}, false
	}
	s, ok := a.session(r, personSessions)
	if !ok {
		return db.Account{}, db.Session{}, false
	}
	acct, err := a.store.AccountByID(r.Context(), s.AccountID)
	if err != nil {
		if !errors.Is(err, db.ErrNotFound) {
			a.log.Error("account of a session", "err", err)
		}
		return db.Account{}, db.Session{}, false
	}
	if acct.Deactivated || acct.Role == db.RoleBot {
		return db.Account{}, db.Session{}, false
	}
	return acct, s, true
}

// Identity is who r speaks for on the chat: the signed-in account, or a
// guest. Any handler may ask it, also of a nil Auth (no sign-in at all).
func (a *Auth) Identity(r *http.Request) chat.Identity {
	if id, ok := r.Context().Value(identityContextKey{}).(chat.Identity); ok {
		return id // told once already on this request (sendGuard)
	}
	if b, ok := r.Context().Value(botContextKey{}).(botAuth); ok {
		return chat.Identity{UserID: b.ID, Name: b.Name, Role: db.RoleBot, TokenHash: b.tokenHash}
	}
	acct, s, ok := a.Person(r)
	if !ok {
		return chat.Identity{}
	}
	return chat.Identity{UserID: acct.ID, Name: acct.Name, Role: acct.Role, Session: s.ID, SessionEnds: s.Expires}
}

// identityContextKey keys the identity a request was found to speak for,
// so that a handler after the send guard does not read its session again.
type identityContextKey struct{}

// withIdentity is r, knowing it speaks for id.
func withIdentity(r *http.Request, id chat.Identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), identityContextKey{}, id))
}

// identifier tells who a request speaks for.
type identifier interface {
	Identity(r *http.Request) chat.Identity
}

// guestReads is what the read routes need to know of the guest policy.
type guestReads interface {
	GuestsMayRead() bool
}

// membersRead lets a request read the room if guests may, or if it is
// signed in; others get 401. With guests off, the room is for members.
func membersRead(log *slog.Logger, hub guestReads, who identifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hub.GuestsMayRead() && who.Identity(r).Guest() {
			writeError(w, r, log, http.StatusUnauthorized, errSignInToRead)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errSignInToRead = errors.New("sign in to use this chat: it is for its members only (POST /signin)")

// isRetired reports whether the admin password no longer opens anything:
// whether an admin account exists. It asks the database until one does,
// since on a cluster another node may have made the first one since this
// node started; it then retires the password here too.
func (a *Auth) isRetired() bool {
	a.mu.Lock()
	retired := a.retired
	a.mu.Unlock()
	if retired {
		return true
	}
	ctx := context.Background()
	if has, err := a.store.HasAdmin(ctx); err != nil || !has {
		return false
	}
	if err := a.retire(ctx); err != nil {
		a.log.Warn("retiring the admin password", "err", err)
	}
	return true
}

// hasPassword reports whether an admin password opens /admin.
func (a *Auth) hasPassword() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hash != nil && !a.retired
}

// retire ends the admin password, once an admin account exists: its hash
// and its sessions are deleted, and it opens nothing from now on.
func (a *Auth) retire(ctx context.Context) error {
	a.mu.Lock()
	was := a.hash != nil && !a.retired
	a.hash, a.retired = nil, true
	clear(a.unsaved)
	a.mu.Unlock()
	if err := a.store.DeleteSetting(ctx, settingHash); err != nil {
		return err
	}
	n, err := a.store.DeleteSessions(ctx, db.SessionAdmin)
	if err != nil {
		return err
	}
	if err := a.store.DeleteSetting(ctx, db.SettingSetupToken); err != nil {
		return err
	}
	if was || n > 0 {
		a.log.Info("an admin account exists: the admin password is retired and its sessions ended; admins sign in at /signin", "sessions", n)
	}
	return nil
}

// checkDummy spends on password what checking it against an account would.
func (a *Auth) checkDummy(password string) {
	a.dummyOnce.Do(func() {
		hash, _ := hashPassword(newToken())
		a.dummy = []byte(hash)
	})
	passwordMatches(a.dummy, password)
}

// AnnounceSetup logs the set-up link while NoChat has no admin account:
// made and logged once, the first time; at later starts, until it is used,
// only where to find it, unless renew asks for a new one (-new-setup-link:
// the old link is lost, as a Pi's journal is at a reboot). base is the
// address people reach NoChat at, as "http://host:port/".
func (a *Auth) AnnounceSetup(ctx context.Context, base string, renew bool) error {
	if a.isRetired() {
		if renew {
			a.log.Info("-new-setup-link is not used: an admin account exists")
		}
		return nil
	}
	switch _, err := a.store.Setting(ctx, db.SettingSetupToken); {
	case err == nil && !renew:
		a.log.Warn("no admin account yet: open the set-up link logged when this database was new (journalctl -u nochat | grep setup); lost, start once with -new-setup-link for a new one")
		return nil
	case err != nil && !errors.Is(err, db.ErrNotFound):
		return err
	}
	link, err := a.NewSetupLink(ctx, base)
	if err != nil {
		return err
	}
	a.log.Warn("no admin account yet: open this one-time set-up link to create it; it is shown only this once", "setup", link)
	return nil
}

// NewSetupLink makes a new set-up link, in place of any earlier one, and
// returns it. Only the SHA-256 of its token is stored.
func (a *Auth) NewSetupLink(ctx context.Context, base string) (string, error) {
	token := newToken()
	if err := a.store.SetSetting(ctx, db.SettingSetupToken, setupHash(token)); err != nil {
		return "", fmt.Errorf("set-up link: %w", err)
	}
	return strings.TrimSuffix(base, "/") + "/setup?token=" + token, nil
}

// setupHash is what the database keeps of a set-up token.
func setupHash(token string) string { return hex.EncodeToString(tokenHash(token)) }

// setupTokenValid reports whether token is the set-up link's.
func (a *Auth) setupTokenValid(ctx context.Context, token string) bool {
	if !wellFormedToken(token) || a.isRetired() {
		return false
	}
	stored, err := a.store.Setting(ctx, db.SettingSetupToken)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(setupHash(token))) == 1
}

// startPersonSession signs r's browser in to an account.
func (a *Auth) startPersonSession(w http.ResponseWriter, r *http.Request, trustProxy bool, accountID int64) error {
	token, _, err := a.newSession(r, personSessions, accountID, chat.AddressKey(chat.ClientIP(r, trustProxy)))
	if err != nil {
		return err
	}
	personSessions.setCookie(w, r, trustProxy, token)
	return nil
}

// accountNamer cleans an account's name and gives its comparison key.
type accountNamer interface {
	AccountName(name string) (display, key string, err error)
	Limits() chat.Limits
}

// nameTaken refuses a new account a name that is another's.
const nameTaken = "That name is taken: pick another."

// checkNewAccount says what is wrong with a new account's name or
// password, in the form's words; when nothing is, it gives the name as
// shown and as compared.
func checkNewAccount(names accountNamer, name, password string) (display, key, problem string) {
	display, key, err := names.AccountName(name)
	if err != nil {
		return "", "", "That name cannot be used: " + err.Error() + "."
	}
	if err := checkPassword(password); err != nil {
		return "", "", err.Error()
	}
	return display, key, ""
}

// checkPassword says what is wrong with a new password, or nil.
func checkPassword(p string) error {
	switch n := utf8.RuneCountInString(p); {
	case !utf8.ValidString(p):
		return errors.New("The password is not valid text.")
	case n < minPassword:
		return fmt.Errorf("The password must be at least %d characters.", minPassword)
	case n > maxPassword:
		return fmt.Errorf("The password must be at most %d characters.", maxPassword)
	}
	return nil
}

// handleSetupForm serves GET /setup, which anyone may ask for: the form
// with the right token, else a page saying where the link is (403), or
// that set-up is done (410).
func handleSetupForm(log *slog.Logger, a *Auth, names accountNamer, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		token := r.URL.Query().Get("token")
		switch {
		case a.isRetired():
			render(w, r, log, http.StatusGone, views.SetupHelpPage(assets, true))
		case !a.setupTokenValid(r.Context(), token):
			render(w, r, log, http.StatusForbidden, views.SetupHelpPage(assets, false))
		default:
			render(w, r, log, http.StatusOK, views.SetupPage(assets, setupForm(names, token, "", "")))
		}
	})
}

func setupForm(names accountNamer, token, name, problem string) views.Setup {
	return views.Setup{Token: token, NewAccount: newAccountForm(names, name, problem)}
}

// newAccountForm is the name and password fields of a form that makes an
// account, with what was typed and why it was refused.
func newAccountForm(names accountNamer, name, problem string) views.NewAccount {
	return views.NewAccount{Name: name, Problem: problem, MaxName: names.Limits().MaxNameLen, MinPassword: minPassword, MaxPassword: maxPassword}
}

// handleSetup serves POST /setup: with the set-up link's token, it
// creates the first account as an admin, spends the token, retires the
// admin password and signs the new admin in. Without the token it does
// nothing (403); nothing is hashed before the token is checked, so the
// route costs strangers no more than a lookup.
func handleSetup(log *slog.Logger, a *Auth, names accountNamer, hub adminHub, trustProxy bool, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !readForm(w, r, hub, trustProxy, placeSignIn, func(r *http.Request, status int, text string) {
			render(w, r, log, status, views.SetupHelpPage(assets, false))
		}) {
			return
		}
		token, name, password := r.PostFormValue("token"), r.PostFormValue("name"), r.PostFormValue("password")
		if a.isRetired() {
			render(w, r, log, http.StatusGone, views.SetupHelpPage(assets, true))
			return
		}
		if !a.setupTokenValid(r.Context(), token) {
			render(w, r, log, http.StatusForbidden, views.SetupHelpPage(assets, false))
			return
		}
		refuse := func(problem string) {
			render(w, r, log, http.StatusBadRequest, views.SetupPage(assets, setupForm(names, token, chat.Cut(name, 4*names.Limits().MaxNameLen), problem)))
		}
		display, key, problem := checkNewAccount(names, name, password)
		if problem != "" {
			refuse(problem)
			return
		}
		hash, err := hashPassword(password)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		acct, err := a.store.CreateFirstAdmin(r.Context(), db.Account{Name: display, NameKey: key, PasswordHash: hash, Created: a.now()}, setupHash(token))
		switch {
		case errors.Is(err, db.ErrSetupDone):
			render(w, r, log, http.StatusGone, views.SetupHelpPage(assets, true))
			return
		case errors.Is(err, db.ErrNameTaken):
			refuse(nameTaken)
			return
		case err != nil:
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		log.Info("the first admin account is created", "name", acct.Name, "id", acct.ID)
		if err := a.retire(r.Context()); err != nil {
			log.Error("retiring the admin password", "err", err)
		}
		if err := a.startPersonSession(w, r, trustProxy, acct.ID); err != nil {
			log.Error("signing in the first admin", "err", err)
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

// nextPath is where to go after signing in: a path on this site from the
// form or URL, or the chat. Anything else (another site, "//host") is the
// chat, so a link cannot send a person elsewhere from here.
func nextPath(v string) string {
	if v == "" || len(v) > 200 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\\r\n") {
		return "/"
	}
	if u, err := url.Parse(v); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return v
}

// handleSignInForm serves GET /signin, to anyone; a signed-in person goes
// on to where they were going.
func handleSignInForm(log *slog.Logger, a *Auth, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := nextPath(r.URL.Query().Get("next"))
		if _, _, ok := a.Person(r); ok {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		render(w, r, log, http.StatusOK, views.SignInPage(assets, views.SignIn{Next: next}))
	})
}

// handleSignIn serves POST /signin: a name and a password. Attempts are
// limited per client address and per account (five, then one every
// 12 s), and across everything by the login gate that also guards the
// admin password, since addresses are cheap to rotate. A name nobody has
// is checked against a dummy hash, so the answer's time does not tell
// which names exist; the answer's text does not either.
func handleSignIn(log *slog.Logger, a *Auth, names accountNamer, hub adminHub, trustProxy bool, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !readForm(w, r, hub, trustProxy, placeSignIn, func(r *http.Request, status int, text string) {
			render(w, r, log, status, views.SignInPage(assets, views.SignIn{Next: "/", Problem: text}))
		}) {
			return
		}
		name, password := r.PostFormValue("name"), r.PostFormValue("password")
		form := views.SignIn{Name: chat.Cut(name, 4*names.Limits().MaxNameLen), Next: nextPath(r.PostFormValue("next"))}
		answer := func(status int, problem string) {
			form.Problem = problem
			render(w, r, log, status, views.SignInPage(assets, form))
		}
		tooMany := func(wait time.Duration) {
			hub.RecordErrorAt(chat.KindRateLimited, placeSignIn, "too many sign-in attempts", requestSubject(r, trustProxy))
			answer(http.StatusTooManyRequests, tooManyAttempts(w, wait))
		}
		now := a.now()
		if !a.tries.AllowAt(chat.ClientIP(r, trustProxy), now) {
			tooMany(tryEvery)
			return
		}
		if len(password) > 4*maxPassword {
			answer(http.StatusBadRequest, "That password is longer than any password here.")
			return
		}
		var acct db.Account
		found := false
		if display, key, err := names.AccountName(name); err == nil {
			switch acct, err = a.store.AccountByNameKey(r.Context(), key); {
			case err == nil && acct.Role == db.RoleBot:
				// A bot signs in with nothing but its token: its name is
				// answered as a name no account has.
			case err == nil:
				found = true
				// An account that start-up's rekeying left on its old key,
				// its name now alike this one's, signs in by its own name.
				if acct.Name != display {
					if exact, err := a.store.AccountByName(r.Context(), display); err == nil {
						acct = exact
					}
				}
			case !errors.Is(err, db.ErrNotFound):
				writeError(w, r, log, http.StatusInternalServerError, err)
				return
			}
		}
		// Keyed by account id: only accounts that exist have a bucket, so
		// made-up names cannot grow the table.
		if found && !a.accounts.AllowAt(strconv.FormatInt(acct.ID, 10), now) {
			tooMany(tryEvery)
			return
		}
		if wait := a.gate.try(now); wait > 0 {
			tooMany(wait)
			return
		}
		ok := false
		if found {
			ok = passwordMatches([]byte(acct.PasswordHash), password)
		} else {
			a.checkDummy(password)
		}
		a.gate.done(ok)
		if !ok {
			hub.RecordErrorAt(chat.KindBadInput, placeSignIn, "wrong name or password at sign-in", requestSubject(r, trustProxy))
			answer(http.StatusUnauthorized, "That name and password do not match an account.")
			return
		}
		// Said only to whoever knows the password: it tells nobody else
		// that the account exists.
		if acct.Deactivated {
			hub.RecordErrorAt(chat.KindBadInput, placeSignIn, "sign-in to a deactivated account", requestSubject(r, trustProxy))
			if acct.Banned {
				answer(http.StatusForbidden, errBannedSignIn)
			} else {
				answer(http.StatusForbidden, errDeactivatedSignIn)
			}
			return
		}
		if err := a.startPersonSession(w, r, trustProxy, acct.ID); err != nil {
			writeError(w, r, log, http.StatusServiceUnavailable, errors.New("signing in is not possible right now; try again shortly"))
			log.Error("sign-in session", "err", err)
			return
		}
		http.Redirect(w, r, form.Next, http.StatusSeeOther)
	})
}

// errDeactivatedSignIn answers the right password of a deactivated account.
const errDeactivatedSignIn = "This account is deactivated: an admin has turned it off. Ask one of the chat's admins if you think that is a mistake."

// errBannedSignIn answers the right password of a banned account.
const errBannedSignIn = "This account is banned: an admin has turned it off and refuses the addresses it used. Ask one of the chat's admins if you think that is a mistake."

// handleSignOut serves POST /signout: it ends the request's session, if it
// has a live one; anyone may call it, and without a session it only clears
// the cookie.
func handleSignOut(log *slog.Logger, a *Auth, hub sessionCloser, trustProxy bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer http.Redirect(w, r, "/", http.StatusSeeOther)
		personSessions.setCookie(w, r, trustProxy, "")
		// The browser forgets what the app kept of this person: the pages
		// the service worker keeps for offline use, the worker itself
		// (and its push subscription) and the page's own storage.
		w.Header().Set("Clear-Site-Data", `"cache", "storage"`)
		_, s, signedIn := a.Person(r)
		if err := a.endSessionIn(r, personSessions); err != nil {
			log.Error("sign out", "err", err)
			return
		}
		if signedIn {
			hub.EndSessions(s.ID) // the device's other open pages stop too
		}
	})
}
