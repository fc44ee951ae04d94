package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nochat/db"
)

// runWebhookCmd runs `nochat webhook ARGS -db path` as the binary would,
// and returns its output and error.
func runWebhookCmd(t *testing.T, path string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(append([]string{"nochat", "webhook"}, args...), "-db", path), func(string) string { return "" }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// A webhook made from the shell while the server runs works on the
// server at once (the message is stored, marked as a bot's, in its
// room); list shows it, used; delete makes its URL 404 at once; bad
// commands are refused with an error (exit status 1).
func TestWebhookShellAgainstARunningServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	s := start(t, map[string]string{"NOCHAT_DB": path})

	out, err := runWebhookCmd(t, path, "create", "-room", "lobby", "-name", "Washer", "-url", s.url)
	if err != nil {
		t.Fatalf("webhook create: %v\n%s", err, out)
	}
	hookURL := regexp.MustCompile(`(?m)^http://\S+/hooks/[0-9]+/[A-Za-z0-9_-]{43}$`).FindString(out)
	if hookURL == "" || !strings.Contains(out, "curl -d 'The washing machine is done' "+hookURL) {
		t.Fatalf("webhook create printed no URL or curl line:\n%s", out)
	}
	post := func(body string) int {
		t.Helper()
		resp, err := http.Post(hookURL, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && string(answer) != "ok" {
			t.Fatalf("the hook answered 200 %q, want ok", answer)
		}
		return resp.StatusCode
	}
	if code := post("The washing machine is done"); code != 200 {
		t.Fatalf("the URL the shell printed, on the running server: %d, want 200", code)
	}
	resp, err := http.Get(s.url + "/discussion/latest/1")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []db.Message
	err = json.NewDecoder(resp.Body).Decode(&msgs)
	resp.Body.Close()
	if err != nil || len(msgs) != 1 || msgs[0].Message != "The washing machine is done" || msgs[0].User != "Washer" || !msgs[0].Bot {
		t.Fatalf("the lobby's newest: %+v (%v), want Washer's bot message", msgs, err)
	}

	out, err = runWebhookCmd(t, path, "list")
	secret := hookURL[strings.LastIndex(hookURL, "/")+1:]
	if err != nil || !strings.Contains(out, "Washer") || !strings.Contains(out, "lobby") || strings.Contains(out, secret) || strings.Contains(out, "never") {
		t.Fatalf("webhook list: %v\n%s", err, out)
	}
	id := strings.Split(strings.TrimPrefix(hookURL, s.url), "/")[2]
	for _, bad := range [][]string{
		{"create"},                     // no room
		{"create", "-room", "nowhere"}, // no such room
		{"create", "-room", "lobby", "-url", "chat.example.org"}, // not an address
		{"create", "-room", "lobby", "-name", strings.Repeat("w", 40)},
		{"delete"},
		{"delete", "x"},
		{"delete", "999"},
		{"frobnicate"},
	} {
		if out, err := runWebhookCmd(t, path, bad...); err == nil {
			t.Errorf("webhook %v: no error\n%s", bad, out)
		}
	}
	if out, err := runWebhookCmd(t, path, "delete", id); err != nil {
		t.Fatalf("webhook delete: %v\n%s", err, out)
	}
	if code := post("again"); code != 404 {
		t.Fatalf("the deleted webhook's URL: %d, want 404", code)
	}
}
