package main

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nochat/db"
	"nochat/outhook"
)

// `nochat bot create -webhook` refuses a URL the SSRF rules refuse (exit
// status 1, no bot made) and takes one -webhook-allow lets through; the
// server, allowed the same receiver with NOCHAT_WEBHOOK_ALLOW, calls it
// when the bot is mentioned, signed with the secret the shell printed,
// and the answer is the bot's reply in the room.
func TestBotWebhookFromTheShell(t *testing.T) {
	var secret string
	calls := make(chan string, 10)
	replyTo := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get(outhook.HeaderTimestamp), 10, 64)
		if time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute || !hmac.Equal([]byte(r.Header.Get(outhook.HeaderSignature)), []byte(outhook.Sign(secret, ts, body))) {
			calls <- "bad signature"
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p outhook.Payload
		json.Unmarshal(body, &p)
		calls <- p.Message.Text
		replyTo <- p.ReplyURL
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "all systems nominal")
	}))
	defer receiver.Close()
	_, port, _ := net.SplitHostPort(receiver.Listener.Addr().String())
	allow := "localhost:" + port

	path := filepath.Join(t.TempDir(), "nochat.db")
	// Behind a proxy: the payload's reply_url and the set-up link name the
	// address the proxy serves, not the one NoChat listens on.
	s := start(t, map[string]string{"NOCHAT_DB": path, "NOCHAT_WEBHOOK_ALLOW": allow, "NOCHAT_PUBLIC_URL": "https://chat.example.org"})
	if !strings.Contains(s.logs.String(), "https://chat.example.org/setup?token=") {
		t.Errorf("the set-up link does not name -public-url:\n%s", s.logs.String())
	}

	for _, u := range []string{
		"http://127.0.0.1:" + port + "/",      // loopback
		"http://localhost:" + port + "/",      // a name that resolves to loopback, not allowed here
		"http://169.254.169.254/latest/",      // cloud metadata
		"http://[::1]:" + port + "/",          // loopback, v6
		"file:///etc/passwd",                  // not http
		"http://localhost:" + port + "@evil/", // a user in the URL
	} {
		out, err := runBotCmd(t, path, "create", "Crane", "-rooms", "lobby", "-webhook", u)
		var usage usageError
		if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "-webhook refused") {
			t.Errorf("-webhook %s: %v (want refused, exit status 1)\n%s", u, err, out)
		}
	}
	if out, _ := runBotCmd(t, path, "list"); strings.Contains(out, "Crane") {
		t.Fatalf("a refused webhook made a bot:\n%s", out)
	}

	hook := "http://localhost:" + port + "/hook"
	out, err := runBotCmd(t, path, "create", "Heron", "-rooms", "lobby", "-webhook", hook, "-webhook-allow", allow)
	if err != nil {
		t.Fatalf("bot create: %v\n%s", err, out)
	}
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, outhook.SecretPrefix) {
			secret = f
		}
	}
	if secret == "" {
		t.Fatalf("no secret printed:\n%s", out)
	}
	if out, _ := runBotCmd(t, path, "list"); !strings.Contains(out, hook) {
		t.Fatalf("bot list shows no webhook:\n%s", out)
	}

	resp, err := http.Post(s.url+"/discussion/"+url.PathEscape("@Heron status?"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case got := <-calls:
		if got != "@Heron status?" {
			t.Fatalf("the receiver got %q", got)
		}
		if got := <-replyTo; got != "https://chat.example.org/rooms/lobby/messages" {
			t.Errorf("reply_url %q, want it under -public-url", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the webhook was not called")
	}
	for range 150 {
		resp, err := http.Get(s.url + "/discussion/latest/5")
		if err != nil {
			t.Fatal(err)
		}
		var msgs []db.Message
		json.NewDecoder(resp.Body).Decode(&msgs)
		resp.Body.Close()
		for _, m := range msgs {
			if m.Message == "all systems nominal" && m.Bot && m.User == "Heron" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the bot's reply is not in the room")
}
