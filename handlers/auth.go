package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"nochat/db"
)

// Admin authentication: one password, a signed session cookie.

const (
	cookieName    = "nochat_admin"
	sessionTTL    = 12 * time.Hour
	settingHash   = "admin_password_hash"
	settingKey    = "admin_session_key"
	generatedSize = 20 // characters of a generated password
)

// Auth checks the admin password and signs admin sessions.
type Auth struct {
	hash  []byte // bcrypt hash of the stored password, or SHA-256 of the one given
	given bool   // the password came from -admin-password
	key   []byte // HMAC key for session cookies
	tries *keyedLimiter

	mu      sync.Mutex
	revoked map[string]time.Time // logged-out sessions, until they expire
}

type settingsStore interface {
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// NewAuth sets up admin logins. With a password (from -admin-password) that
// is the password. Without one, the password stored by an earlier start is
// kept; at the very first start one is generated, only its hash is stored,
// and it is logged once, with how to change it.
func NewAuth(ctx context.Context, store settingsStore, password string, log *slog.Logger) (*Auth, error) {
	a := &Auth{tries: newKeyedLimiter(rate.Every(12*time.Second), 5), revoked: make(map[string]time.Time)}
	switch stored, err := store.Setting(ctx, settingHash); {
	case password != "":
		// The password is in the process's configuration already, so a
		// slow hash protects nothing here; it would only cost start-up
		// time (about a second on a Pi Zero). Compare digests instead.
		sum := sha256.Sum256([]byte(password))
		a.hash, a.given = sum[:], true
	case err == nil:
		a.hash = []byte(stored)
	case errors.Is(err, db.ErrNotFound):
		password = generatePassword()
		if a.hash, err = bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost); err != nil {
			return nil, fmt.Errorf("admin password: %w", err)
		}
		if err := store.SetSetting(ctx, settingHash, string(a.hash)); err != nil {
			return nil, err
		}
		log.Warn("generated an admin password; it is shown only this once",
			"password", password,
			"login", "/admin",
			"change", "start with -admin-password or NOCHAT_ADMIN_PASSWORD set to your own")
	default:
		return nil, err
	}

	key, err := store.Setting(ctx, settingKey)
	if errors.Is(err, db.ErrNotFound) {
		b := make([]byte, 32)
		rand.Read(b)
		key = hex.EncodeToString(b)
		err = store.SetSetting(ctx, settingKey, key)
	}
	if err != nil {
		return nil, err
	}
	if a.key, err = hex.DecodeString(key); err != nil || len(a.key) < 16 {
		return nil, errors.New("admin session key in the database is damaged")
	}
	return a, nil
}

// generatePassword makes a password without look-alike characters.
func generatePassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, generatedSize)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// sign makes a session value: expiry and an HMAC over it and the password
// hash, so changing the password ends every session.
func (a *Auth) sign(expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte("nochat-admin|" + exp + "|"))
	mac.Write(a.hash)
	return exp + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Admin reports whether the request carries a live admin session. Pages
// outside /admin (the chat page) ask it to show admin controls.
func (a *Auth) Admin(r *http.Request) bool { return a.valid(r) }

func (a *Auth) valid(r *http.Request) bool {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	exp, _, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > unix {
		return false
	}
	want := a.sign(time.Unix(unix, 0))
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(want)) != 1 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, out := a.revoked[c.Value]
	return !out
}

// revoke ends the request's session for good, not only in its browser. The
// list lives in memory: a restart forgets it, and sessions last 12 hours.
func (a *Auth) revoke(r *http.Request) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for v, exp := range a.revoked {
		if now.After(exp) {
			delete(a.revoked, v)
		}
	}
	a.revoked[c.Value] = now.Add(sessionTTL)
}

func (a *Auth) check(password string) bool {
	if a.given {
		sum := sha256.Sum256([]byte(password))
		return subtle.ConstantTimeCompare(sum[:], a.hash) == 1
	}
	return bcrypt.CompareHashAndPassword(a.hash, []byte(password)) == nil
}

func setSession(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    value,
		Path:     "/", // the chat page shows admin controls too
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// requireAdmin lets a request with a valid session through. Others go to the
// login page if they are a browser asking for a page, or get 401.
func requireAdmin(a *Auth, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.valid(r) {
			w.Header().Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r)
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
