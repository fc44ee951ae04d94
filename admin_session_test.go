package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"nochat/db"
)

// adminLogin logs in and returns the session cookie's value, or "" with
// the status when the login is refused.
func adminLogin(t *testing.T, base, password string) (string, int) {
	t.Helper()
	resp, err := noRedirects.PostForm(base+"/admin/login", url.Values{"password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "nochat_admin" && c.MaxAge > 0 {
			return c.Value, resp.StatusCode
		}
	}
	return "", resp.StatusCode
}

// withSession sends a request carrying the session cookie and returns the
// status.
func withSession(t *testing.T, method, u, session string) int {
	t.Helper()
	return fetch(t, method, u, "nochat_admin="+session, nil).status
}

// adminPost logs in over HTTP, as a script would, and posts to path.
func adminPost(t *testing.T, s *server, path string) (int, string) {
	t.Helper()
	session, _ := adminLogin(t, s.url, adminPassword) // a refusal shows in the status
	p := fetch(t, "POST", s.url+path, "nochat_admin="+session, url.Values{})
	return p.status, p.body
}

// adminLive logs in to the dashboard and returns its live part's HTML.
func adminLive(t *testing.T, base, password string) string {
	t.Helper()
	session, _ := adminLogin(t, base, password) // a refusal shows in the status
	p := fetch(t, "GET", base+"/admin/live", "nochat_admin="+session, nil)
	if p.status != 200 {
		t.Fatalf("admin dashboard: %d", p.status)
	}
	return p.body
}

func TestAdminSessionsSurviveRestartsAndSoDoLogouts(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	env := map[string]string{"NOCHAT_DB": dbPath, "NOCHAT_ADMIN_PASSWORD": "first password"}
	s := start(t, env)
	kept, status := adminLogin(t, s.url, "first password")
	if kept == "" {
		t.Fatalf("login: %d and no session cookie", status)
	}
	ended, _ := adminLogin(t, s.url, "first password")

	// A restart logs nobody out.
	s.shutdown(t)
	s = start(t, env)
	for _, session := range []string{kept, ended} {
		if got := withSession(t, "GET", s.url+"/admin/live", session); got != 200 {
			t.Fatalf("a session from before the restart: %d, want 200", got)
		}
	}
	// A logout holds, also across a restart; the other session lives on.
	if got := withSession(t, "POST", s.url+"/admin/logout", ended); got != http.StatusSeeOther {
		t.Fatalf("logout: %d, want 303", got)
	}
	if got := withSession(t, "GET", s.url+"/admin/live", ended); got != http.StatusUnauthorized {
		t.Fatalf("the logged-out cookie: %d, want 401", got)
	}
	s.shutdown(t)
	s = start(t, env)
	if got := withSession(t, "GET", s.url+"/admin/live", ended); got != http.StatusUnauthorized {
		t.Fatalf("the logged-out cookie after a restart: %d, want 401", got)
	}
	if got := withSession(t, "GET", s.url+"/admin/live", kept); got != 200 {
		t.Fatalf("the other session after the logout and a restart: %d, want 200", got)
	}
	s.shutdown(t)

	// The database holds a bcrypt hash of the password and the tokens'
	// SHA-256, never the password or a token.
	checkStoredSecrets(t, dbPath, "first password", kept)

	// A new password ends every session.
	env["NOCHAT_ADMIN_PASSWORD"] = "second password"
	s = start(t, env)
	if got := withSession(t, "GET", s.url+"/admin/live", kept); got != http.StatusUnauthorized {
		t.Fatalf("a session of the old password: %d, want 401", got)
	}
	if _, got := adminLogin(t, s.url, "first password"); got != http.StatusUnauthorized {
		t.Fatalf("the old password: %d, want 401", got)
	}
	if session, got := adminLogin(t, s.url, "second password"); session == "" {
		t.Fatalf("the new password: %d, want 303 and a session", got)
	}
}

func checkStoredSecrets(t *testing.T, dbPath, password, session string) {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, dbPath, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := store.Setting(ctx, "admin_password_hash")
	if err != nil {
		t.Fatalf("the given admin password is not stored hashed: %v", err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost < bcrypt.DefaultCost {
		t.Fatalf("stored admin password hash %.7s…: not bcrypt at cost %d or more (%v)", hash, bcrypt.DefaultCost, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		t.Fatal("the stored hash does not match the given password")
	}
	sum := sha256.Sum256([]byte(session))
	if _, err := store.SessionByToken(ctx, sum[:], time.Now()); err != nil {
		t.Fatalf("the live session is not stored under its token's SHA-256: %v", err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, secret := range []string{password, session} {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("%s holds %q in the clear", filepath.Base(dbPath+suffix), strings.TrimSpace(secret))
			}
		}
	}
}
