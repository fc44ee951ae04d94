package handlers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// Admin authentication: one password, kept only as a bcrypt hash, and
// sessions stored in SQLite under the SHA-256 of a random token that only
// the browser holds.

// hashCost is bcrypt's cost for the admin password: each offline guess
// at a stolen hash costs as much as one check. One check (go test
// ./handlers -run '^$' -bench PasswordHash) took 58-149 ms on the
// shared 2-core development VM, and 81-430 ms for the Pi Zero's
// linux/arm GOARM=6 build under qemu-arm -cpu arm1176: emulated on a
// fast x86, which says little of a real Pi Zero's 1 GHz ARM1176.
// The login gate allows at most a couple of checks a minute under
// attack, so the cost cannot be turned against the Pi's CPU.
//
// It is a variable for this package's tests alone, which sign in
// hundreds of times and use bcrypt's least cost (under the race detector
// a check at this one takes nearly a second); the main package's tests
// check that the hash a server stores has this cost.
var hashCost = bcrypt.DefaultCost

const (
	cookieName  = "nochat_admin"
	sessionTTL  = 12 * time.Hour
	settingHash = "admin_password_hash"

	// maxAdminSessions bounds the live admin sessions: one more login
	// drops the oldest. An admin has a few browsers, not dozens.
	maxAdminSessions = 16
	// touchEvery is how stale a session's last-seen time may get: writing
	// it at every request (the dashboard polls each second) would be SD
	// card wear for a time nobody needs to the second.
	touchEvery = 5 * time.Minute
	// tokenBytes of randomness make a session token: 256 bits, which
	// base64url writes in tokenChars characters.
	tokenBytes = 32
	tokenChars = 43
	// maxSessionCookies is how many cookies of our name one request may
	// have looked up (a stale one from an older path can sit beside the
	// live one); the rest are ignored.
	maxSessionCookies = 2
	// maxAgentBytes is how much of a user agent a session keeps.
	maxAgentBytes = 160
	// tryEvery is how often one address, or one account, may try a
	// password once its first five tries are spent.
	tryEvery = 12 * time.Second
	// renameEvery is how often one account may rename once its first five
	// renames are spent: each reaches every open page.
	renameEvery = time.Minute
)

// Auth checks the admin password, limits guessing it, and keeps admin
// sessions.
type Auth struct {
	store authStore
	log   *slog.Logger
	now   func() time.Time // time.Now; tests move it by hand

	tries    *chat.KeyedLimiter // attempts per client address
	accounts *chat.KeyedLimiter // sign-in attempts per account
	renames  *chat.KeyedLimiter // renames per account
	gate     *loginGate         // checks from every address together, admin password and accounts alike

	// dummy is a bcrypt hash a sign-in with an unknown name is checked
	// against, so that it takes as long as one with a known name.
	dummy     []byte
	dummyOnce sync.Once

	mu   sync.Mutex
	hash []byte // bcrypt hash of the password (see passwordBytes); nil for none
	// retired is set once an admin account exists: the admin password
	// then opens nothing, and its sessions are ended.
	retired bool
	// unsaved are sessions the database refused to store (a full disk):
	// kept here, at most maxAdminSessions, until they expire or NoChat
	// restarts, so that the admin can still reach the dashboard that
	// shows what is wrong. Keyed by the token's SHA-256; values expire.
	unsaved map[string]time.Time
	// banned are the addresses (chat.AddressKey) a ban refuses, as the
	// database holds them: read at the start, changed with every ban;
	// with how often, and when last, this node refused each since.
	banned map[string]*Refusals
	// banReads serializes the reads that set banned as the database has
	// it after a change (bansChanged); readingBack counts those started by
	// BansChanged, which Wait waits for.
	banReads    sync.Mutex
	readingBack sync.WaitGroup
}

// authStore is what Auth keeps in the database: in the settings, the
// admin password's hash, the set-up token, the invite code and the join
// policy; the accounts; and the sessions.
type authStore interface {
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
	SetSharedSetting(ctx context.Context, key, value string) error
	SharedSettingOr(ctx context.Context, key, value string) (string, error)
	DeleteSetting(ctx context.Context, key string) error
	HasAdmin(ctx context.Context) (bool, error)
	CreateFirstAdmin(ctx context.Context, a db.Account, tokenHash string) (db.Account, error)
	CreateAccount(ctx context.Context, a db.Account) (db.Account, error)
	AccountByNameKey(ctx context.Context, key string) (db.Account, error)
	AccountByName(ctx context.Context, name string) (db.Account, error)
	AccountByID(ctx context.Context, id int64) (db.Account, error)
	CreateSession(ctx context.Context, tokenHash []byte, s db.Session, max int) error
	SessionByToken(ctx context.Context, tokenHash []byte, now time.Time) (db.Session, error)
	TouchSession(ctx context.Context, id int64, now time.Time) error
	DeleteSession(ctx context.Context, tokenHash []byte) error
	DeleteSessions(ctx context.Context, kind string) (int64, error)
	PruneSessions(ctx context.Context, now time.Time) (int64, error)
	BannedAddresses(ctx context.Context) ([]string, error)
	BannedAmong(ctx context.Context, addresses []string) ([]string, error)
	botTokenStore
}

// NewAuth sets up sign-in: people's accounts, and the admin password of
// earlier versions. The admin password opens /admin only until the first
// admin account exists (see AnnounceSetup): with one (from
// -admin-password) that is the password: its bcrypt hash is stored, and
// hashed again only when the stored hash no longer matches it, which also
// ends every admin-password session. Without one, the stored password is
// kept. A new database has none: its first admin comes from the set-up
// link.
func NewAuth(ctx context.Context, store authStore, password string, log *slog.Logger) (*Auth, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Auth{
		store:    store,
		log:      log,
		now:      time.Now,
		tries:    chat.NewKeyedLimiter(rate.Every(tryEvery), 5),
		accounts: chat.NewKeyedLimiter(rate.Every(tryEvery), 5),
		renames:  chat.NewKeyedLimiter(rate.Every(renameEvery), 5),
		gate:     &loginGate{},

		unsaved: make(map[string]time.Time),
		banned:  make(map[string]*Refusals),
	}
	bans, err := store.BannedAddresses(ctx)
	if err != nil {
		return nil, err
	}
	a.SetBanned(bans, true)
	hasAdmin, err := store.HasAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if hasAdmin {
		if password != "" {
			log.Warn("-admin-password is not used: admin accounts exist, and admins sign in at /signin with their own")
		}
		// Deleting what the retired password left only tidies: a start
		// on a full disk must not stop at it.
		if err := a.retire(ctx); err != nil {
			log.Warn("removing the retired admin password", "err", err)
		}
		return a, nil
	}
	stored, err := store.Setting(ctx, settingHash)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	found := err == nil
	switch {
	case password != "" && found && passwordMatches([]byte(stored), password):
		a.hash = []byte(stored) // the same password as at the last start
	case password != "":
		if err := a.setPassword(ctx, password); err != nil {
			return nil, err
		}
		// A new password ends what the old one opened.
		n, err := store.DeleteSessions(ctx, db.SessionAdmin)
		if err != nil {
			return nil, err
		}
		if found {
			log.Info("the admin password changed: every admin session ended", "sessions", n)
		}
	case found:
		a.hash = []byte(stored)
	}
	// Expired sessions open nothing; removing them only tidies, and must
	// not stop a start on a full disk.
	if _, err := store.PruneSessions(ctx, a.now()); err != nil {
		log.Warn("removing expired admin sessions", "err", err)
	}
	return a, nil
}

// setPassword hashes password and stores the hash.
func (a *Auth) setPassword(ctx context.Context, password string) error {
	hash, err := hashPassword(password)
	if err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	if err := a.store.SetSetting(ctx, settingHash, hash); err != nil {
		return err
	}
	a.mu.Lock()
	a.hash = []byte(hash)
	a.mu.Unlock()
	return nil
}

// passwordBytes is what bcrypt hashes for a password. bcrypt takes at most
// 72 bytes; a longer password is hashed as the base64 of its SHA-256, so
// all of it counts. Shorter ones are hashed as they are, which keeps the
// hashes stored by earlier versions valid.
func passwordBytes(password string) []byte {
	if len(password) <= 72 {
		return []byte(password)
	}
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// hashPassword is a new password's bcrypt hash.
func hashPassword(p string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(passwordBytes(p), hashCost)
	return string(h), err
}

// passwordMatches reports whether password is the one hash was made of.
func passwordMatches(hash []byte, password string) bool {
	return bcrypt.CompareHashAndPassword(hash, passwordBytes(password)) == nil
}

// check reports whether password is the admin password.
func (a *Auth) check(ctx context.Context, password string) bool {
	a.mu.Lock()
	hash := a.hash
	a.mu.Unlock()
	if hash == nil {
		// No admin password (or a retired one): the check costs what a
		// real one would, so its absence shows in no timing.
		a.checkDummy(password)
		return false
	}
	if !passwordMatches(hash, password) {
		return false
	}
	if a.isRetired() { // since this node started, on another of a cluster
		return false
	}
	// A hash made with another cost (an earlier version's) is made again
	// with today's, now that the password is at hand.
	if cost, err := bcrypt.Cost(hash); err == nil && cost != hashCost {
		if err := a.setPassword(ctx, password); err != nil {
			a.log.Warn("rehashing the admin password", "err", err)
		}
	}
	return true
}

// Admin reports whether r carries a live admin session. Any handler may ask
// it, to show or allow what only an admin may do.
func (a *Auth) Admin(r *http.Request) bool {
	if a == nil {
		return false
	}
	acct, _, signedIn := a.Person(r)
	return a.admits(r, signedIn && acct.Role == db.RoleAdmin)
}

// AdminAs is Admin for a request whose identity is known already (id, from
// Identity), so that its session and account are not read a second time.
func (a *Auth) AdminAs(r *http.Request, id chat.Identity) bool {
	if a == nil {
		return false
	}
	return a.admits(r, id.Role == db.RoleAdmin)
}

// admits reports whether r may act as an admin: signed in to an admin's
// account (adminAccount), or, until the admin password is retired, with
// its session.
func (a *Auth) admits(r *http.Request, adminAccount bool) bool {
	if adminAccount {
		return true
	}
	if a.isRetired() {
		return false
	}
	_, ok := a.session(r, adminSessions)
	return ok
}

// sessionKind is what sets the admin password's sessions and people's
// apart: everything else about a session is the same for both.
type sessionKind struct {
	kind     string // db.SessionAdmin or db.SessionAccount
	cookie   string // the cookie that holds the token
	ttl      time.Duration
	max      int // live sessions of one owner: one more ends the oldest
	sameSite http.SameSite
}

var (
	adminSessions = sessionKind{kind: db.SessionAdmin, cookie: cookieName, ttl: sessionTTL, max: maxAdminSessions, sameSite: http.SameSiteStrictMode}
	// People's cookie is SameSite=Lax, not the admin's Strict: a person
	// who follows a link to the chat from a mail or another site arrives
	// signed in, as they expect. Lax sends the cookie on no other site's
	// POST, fetch or WebSocket; every POST is checked by
	// CrossOriginProtection besides, and no GET changes anything.
	personSessions = sessionKind{kind: db.SessionAccount, cookie: personCookie, ttl: personTTL, max: maxPersonSessions, sameSite: http.SameSiteLaxMode}
)

// setCookie gives the browser a session's token, or with token "" clears
// the cookie. It goes to every path, so the chat page too knows who is
// signed in, never to scripts (HttpOnly), and Secure over HTTPS.
func (k sessionKind) setCookie(w http.ResponseWriter, r *http.Request, trustProxy bool, token string) {
	maxAge := int(k.ttl.Seconds())
	if token == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name:     k.cookie,
		Value:    token,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secureRequest(r, trustProxy),
		SameSite: k.sameSite,
	})
}

// cookieTokenHashes is what the database may know of the tokens in r's
// named cookie: at most maxSessionCookies of them. A cookie value that
// cannot be a token (wrong length or characters) is dropped before any
// lookup, so an oversized or garbled cookie costs nothing but its parsing.
func cookieTokenHashes(r *http.Request, cookie string) [][]byte {
	var hashes [][]byte
	for _, c := range r.CookiesNamed(cookie) {
		if len(hashes) == maxSessionCookies {
			break
		}
		if wellFormedToken(c.Value) {
			hashes = append(hashes, tokenHash(c.Value))
		}
	}
	return hashes
}

// session finds r's live session of a kind.
func (a *Auth) session(r *http.Request, k sessionKind) (db.Session, bool) {
	now := a.now()
	for _, hash := range cookieTokenHashes(r, k.cookie) {
		if k.kind == db.SessionAdmin {
			if expires, ok := a.unsavedSession(hash, now); ok {
				return db.Session{Kind: db.SessionAdmin, Expires: expires}, true
			}
		}
		s, err := a.store.SessionByToken(r.Context(), hash, now)
		if err != nil {
			if !errors.Is(err, db.ErrNotFound) {
				a.log.Error("session lookup", "kind", k.kind, "err", err)
			}
			continue
		}
		if s.Kind != k.kind {
			continue
		}
		if now.Sub(s.LastSeen) > touchEvery {
			if err := a.store.TouchSession(r.Context(), s.ID, now); err != nil {
				// Not worth a line a second while the disk is full.
				a.log.Debug("session last seen", "kind", k.kind, "err", err)
			}
		}
		return s, true
	}
	return db.Session{}, false
}

// newSession stores a new session of a kind, for an account (0 for the
// admin password), signed in from address (chat.AddressKey; "" for none),
// and returns its token and the token's hash.
func (a *Auth) newSession(r *http.Request, k sessionKind, accountID int64, address string) (token string, hash []byte, err error) {
	token = newToken()
	hash = tokenHash(token)
	now := a.now()
	err = a.store.CreateSession(r.Context(), hash, db.Session{
		Kind:      k.kind,
		AccountID: accountID,
		UserAgent: shortUserAgent(r.UserAgent()),
		Created:   now,
		Expires:   now.Add(k.ttl),
		Address:   address,
	}, k.max)
	return token, hash, err
}

// startSession stores a new admin session and gives its token to the
// browser. A database that cannot store it (a full disk) does not keep the
// admin out: the session is then kept in memory.
func (a *Auth) startSession(w http.ResponseWriter, r *http.Request, trustProxy bool) {
	token, hash, err := a.newSession(r, adminSessions, 0, chat.AddressKey(chat.ClientIP(r, trustProxy)))
	if err != nil {
		a.log.Warn("admin session kept in memory only, until a restart: the database refused it", "err", err)
		a.keepUnsaved(hash, a.now())
	}
	adminSessions.setCookie(w, r, trustProxy, token)
}

// keepUnsaved keeps a session the database refused, dropping expired ones
// and, past maxAdminSessions, the oldest.
func (a *Auth) keepUnsaved(hash []byte, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	oldest := ""
	for k, exp := range a.unsaved {
		if !exp.After(now) {
			delete(a.unsaved, k)
		} else if oldest == "" || exp.Before(a.unsaved[oldest]) {
			oldest = k
		}
	}
	if len(a.unsaved) >= maxAdminSessions {
		delete(a.unsaved, oldest)
	}
	a.unsaved[string(hash)] = now.Add(sessionTTL)
}

// unsavedSession reports whether hash is a live unsaved session, and when
// it expires.
func (a *Auth) unsavedSession(hash []byte, now time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.unsaved[string(hash)]
	return exp, ok && exp.After(now)
}

// endSession ends r's admin session, on the server and in the browser. A
// request without a live session changes nothing on the server.
func (a *Auth) endSession(w http.ResponseWriter, r *http.Request, trustProxy bool) error {
	defer adminSessions.setCookie(w, r, trustProxy, "")
	return a.endSessionIn(r, adminSessions)
}

// endSessionIn ends the session whose token is in r's cookie of a kind, if it
// is a live one.
func (a *Auth) endSessionIn(r *http.Request, k sessionKind) error {
	for _, hash := range cookieTokenHashes(r, k.cookie) {
		a.mu.Lock()
		_, unsaved := a.unsaved[string(hash)]
		delete(a.unsaved, string(hash))
		a.mu.Unlock()
		if unsaved {
			return nil
		}
		_, err := a.store.SessionByToken(r.Context(), hash, a.now())
		if errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		return a.store.DeleteSession(r.Context(), hash)
	}
	return nil
}

// newToken is a random session or set-up token: tokenBytes of randomness,
// in base64url.
func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormedToken reports whether v can be a session token: tokenChars
// characters of unpadded base64url.
func wellFormedToken(v string) bool {
	if len(v) != tokenChars {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tokenHash is what the database knows of a token.
func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// shortUserAgent is a user agent cut to maxAgentBytes at a character
// boundary, with invalid UTF-8 replaced.
func shortUserAgent(ua string) string {
	if len(ua) > maxAgentBytes {
		i := maxAgentBytes
		for i > 0 && !utf8.RuneStart(ua[i]) {
			i-- // ua[i] continues a character begun before the cut: cut before it
		}
		ua = ua[:i] + "…"
	}
	return strings.ToValidUTF8(ua, "\uFFFD")
}

// secureRequest reports whether the browser reached NoChat over HTTPS:
// directly, or, with trustProxy, through a proxy that says so in
// X-Forwarded-Proto (the last value, the one the proxy itself set).
func secureRequest(r *http.Request, trustProxy bool) bool {
	if r.TLS != nil {
		return true
	}
	if !trustProxy {
		return false
	}
	v := r.Header.Values("X-Forwarded-Proto")
	if len(v) == 0 {
		return false
	}
	last := v[len(v)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// requireAdmin lets a request with a valid session through. Others go to the
// login page if they are a browser asking for a page, or get 401.
func requireAdmin(a *Auth, assets views.AdminAssets, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acct, _, signedIn := a.Person(r)
		if a.admits(r, signedIn && acct.Role == db.RoleAdmin) {
			w.Header().Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r)
			return
		}
		if signedIn {
			// Signed in, as someone who is not an admin: signing in again
			// would not help. A browser opening a page gets a page.
			if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
				render(w, r, a.log, http.StatusForbidden, views.MissingPage(assets, "The dashboard is for admins",
					"You are signed in as "+acct.Name+", a "+acct.Role+". An admin can make you one.", "/", "Back to the chat"))
				return
			}
			encode(w, http.StatusForbidden, errorBody{Error: "the dashboard is for admins"})
			return
		}
		switch {
		case r.Header.Get("HX-Request") != "":
			w.Header().Set("HX-Redirect", "/admin/login") // the session ended: htmx goes to the login page
		case strings.Contains(r.Header.Get("Accept"), "text/html"):
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		encode(w, http.StatusUnauthorized, errorBody{Error: "log in at /admin/login first"})
	})
}

// tooManyAttempts sets Retry-After to wait, in whole seconds and at least
// one, and says it in a refusal's words.
func tooManyAttempts(w http.ResponseWriter, wait time.Duration) string {
	secs := max(1, int(wait.Round(time.Second)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return fmt.Sprintf("Too many attempts. Wait %d seconds and try again.", secs)
}

// The login gate limits password checks from all addresses together, since
// an attacker can rotate addresses (200 gave 127,000 guesses a minute
// against a per-address limit alone). The first gateFree failures in a row
// pass at once (typos); after them each check must wait, from the one
// before, gateFirst doubled at every further failure up to gateMax. Under
// a steady attack that is 10 checks in its first minute and 2 a minute
// after. A check is counted as a failure when it starts, so parallel
// requests cannot slip through together; a success resets the gate. The
// wait never exceeds gateMax, so once an attack stops the real admin's
// next attempt is checked within 30 s; failures are forgotten after
// gateForget without attempts.
const (
	gateFree   = 5
	gateFirst  = time.Second
	gateMax    = 30 * time.Second
	gateForget = 15 * time.Minute
)

// loginGate is the global limit on password checks; see gateFree.
type loginGate struct {
	mu       sync.Mutex
	failures int       // checks in a row that failed (or are under way)
	next     time.Time // no check starts before this
	last     time.Time // when the latest check started
}

// try starts a password check at now, or reports how long to wait first.
func (g *loginGate) try(now time.Time) (wait time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.next) {
		return g.next.Sub(now)
	}
	if now.Sub(g.last) > gateForget {
		g.failures = 0
	}
	g.last = now
	g.failures++ // a failure until done says otherwise
	g.next = now.Add(gateWait(g.failures))
	return 0
}

// done ends a check that try started: a success opens the gate again.
func (g *loginGate) done(ok bool) {
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures, g.next = 0, time.Time{}
}

// gateWait is the wait after the given number of failures in a row.
func gateWait(failures int) time.Duration {
	if failures < gateFree {
		return 0
	}
	if shift := failures - gateFree; shift < 5 {
		return min(gateFirst<<shift, gateMax)
	}
	return gateMax
}
