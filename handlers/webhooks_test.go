package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
)

// makeHook makes a webhook named name in room as the dashboard does, and
// returns its path with the secret.
func (w botWorld) makeHook(t *testing.T, room int64, name string) (db.Webhook, string) {
	t.Helper()
	r, ok := w.hub.Room(room)
	if !ok {
		t.Fatalf("no room %d", room)
	}
	h, secret, err := CreateWebhook(context.Background(), w.store, r, name, "test", chat.DefaultMaxNameLen, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return h, WebhookPath(h.ID, secret)
}

// hookPost posts body as contentType ("" for none) to path, with no
// cookie; it returns the status and the answer.
func hookPost(t *testing.T, srv *httptest.Server, path, contentType, body string) (int, string) {
	t.Helper()
	code, _, answer := roomCall(t, srv, "POST", path, "", body, map[string]string{"Content-Type": contentType})
	return code, answer
}

// lastIn is the newest message of room as session reads it.
func (w botWorld) lastIn(t *testing.T, slug, session string) db.Message {
	t.Helper()
	code, body := call(t, w.srv, "GET", "/rooms/"+slug+"/messages/latest/1", session, "", nil)
	var msgs []db.Message
	if err := json.Unmarshal([]byte(body), &msgs); code != 200 || err != nil || len(msgs) != 1 {
		t.Fatalf("latest in %s: %d %s", slug, code, body)
	}
	return msgs[0]
}

// Payloads as the tools send them, and what the room then shows. The
// tools' shapes are from their sources: Uptime Kuma's
// server/notification-providers/slack.js (with and without a heartbeat;
// the button when a primary base URL is set) and webhook.js (JSON: msg,
// heartbeat, monitor); Home Assistant's rest notify platform
// (homeassistant/components/rest/notify.py: method POST sends the form
// message=...[&title=...], POST_JSON the same as JSON; message_param_name
// "text" makes it Slack's shape).
func TestWebhookPayloads(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	hook, path := w.makeHook(t, w.ops.ID, "Uptime Kuma")

	const kumaSlack = `{"text":"Uptime Kuma Alert\n[NAS] [🔴 Down] connect ECONNREFUSED 192.168.1.20:5000","channel":"#home","username":"Uptime Kuma","icon_emoji":":robot:",
		"attachments":[{"color":"#e01e5a","blocks":[
			{"type":"header","text":{"type":"plain_text","text":"Uptime Kuma Alert"}},
			{"type":"section","fields":[{"type":"mrkdwn","text":"*Message*\n[NAS] [🔴 Down] connect ECONNREFUSED 192.168.1.20:5000"},{"type":"mrkdwn","text":"*Time (UTC)*\n2026-12-04 21:30:00"}]},
			{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Visit Uptime Kuma"},"value":"Uptime-Kuma","url":"https://kuma.lan/dashboard/3"}]}]}]}`
	const kumaWebhook = `{"heartbeat":{"monitorID":3,"status":0,"time":"2026-12-04 21:30:00.000","msg":"connect ECONNREFUSED 192.168.1.20:5000","important":true,"duration":60},
		"monitor":{"id":3,"name":"NAS","url":"http://192.168.1.20:5000","type":"http"},
		"msg":"[NAS] [🔴 Down] connect ECONNREFUSED 192.168.1.20:5000"}`
	for _, c := range []struct {
		name, contentType, body, want, html string
	}{
		{"plain text", "text/plain", "The washing machine is done\n", "The washing machine is done", ""},
		{"curl -d (a form type, no form)", "application/x-www-form-urlencoded", "The washing machine is done", "The washing machine is done", ""},
		{"no content type", "", "The dryer is done", "The dryer is done", ""},
		{"Slack text with a link and username", "application/json",
			`{"text": "Backup *done*: <https://nas.lan/backups|the log> &amp; <https://nas.lan>", "username": "Backup job"}`,
			"**Backup job**: Backup *done*: the log (https://nas.lan/backups) & https://nas.lan", `<a href="https://nas.lan/backups"`},
		{"Slack username same as the webhook's", "application/json", `{"text": "up again", "username": "uptime kuma"}`, "up again", ""},
		{"Slack blocks", "application/json",
			`{"text": "fallback only", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "_Printer_ finished ` + "`benchy.gcode`" + ` <!here>"}}, {"type": "context", "elements": [{"type": "mrkdwn", "text": "OctoPrint"}]}]}`,
			"_Printer_ finished `benchy.gcode` @here\nOctoPrint", "<code>benchy.gcode</code>"},
		{"Slack attachments", "application/json",
			`{"attachments": [{"fallback": "NAS disk failed", "title": "NAS", "title_link": "https://nas.lan", "text": "Disk &lt;sda&gt; failed", "fields": [{"title": "Pool", "value": "tank"}]}, {"fallback": "only a fallback"}]}`,
			"*NAS* (https://nas.lan)\nDisk <sda> failed\n*Pool*: tank\nonly a fallback", "<strong>NAS</strong>"},
		{"Slack's legacy form payload=", "application/x-www-form-urlencoded",
			url.Values{"payload": {`{"text": "The *NAS* is back"}`}}.Encode(), "The *NAS* is back", "<strong>NAS</strong>"},
		{"Uptime Kuma, Slack notifier", "application/json", kumaSlack,
			"Uptime Kuma Alert\n[NAS] [🔴 Down] connect ECONNREFUSED 192.168.1.20:5000\n*Uptime Kuma Alert*\n*Message*\n[NAS] [🔴 Down] connect ECONNREFUSED 192.168.1.20:5000\n*Time (UTC)*\n2026-12-04 21:30:00\nVisit Uptime Kuma (https://kuma.lan/dashboard/3)",
			`<a href="https://kuma.lan/dashboard/3"`},
		{"Uptime Kuma, Slack notifier's test", "application/json",
			`{"text": "Uptime Kuma Slack testing successful.", "channel": "", "username": "", "icon_emoji": ""}`, "Uptime Kuma Slack testing successful.", ""},
		{"Uptime Kuma, Webhook notifier (JSON)", "application/json", kumaWebhook, "[NAS] [🔴 Down] connect ECONNREFUSED 192.168.1.20:5000", ""},
		{"Home Assistant, rest notify POST", "application/x-www-form-urlencoded",
			url.Values{"message": {"The washing machine is done"}, "title": {"Laundry"}}.Encode(), "**Laundry**\nThe washing machine is done", "<strong>Laundry</strong>"},
		{"Home Assistant, rest notify POST_JSON", "application/json",
			`{"message": "Front door opened", "title": "Home Assistant"}`, "**Home Assistant**\nFront door opened", ""},
		{"Home Assistant, rest notify POST_JSON, message_param_name: text", "application/json; charset=utf-8",
			`{"text": "Front door opened"}`, "Front door opened", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, answer := hookPost(t, w.srv, path, c.contentType, c.body); code != 200 || answer != "ok" {
				t.Fatalf("POST: %d %q, want 200 ok", code, answer)
			}
			m := w.lastIn(t, w.ops.Slug, w.bob)
			if m.Message != c.want || m.User != hook.Name || !m.Bot {
				t.Fatalf("the room shows %q by %q (bot %v), want %q by %q, a bot", m.Message, m.User, m.Bot, c.want, hook.Name)
			}
			if !strings.Contains(m.HTML, c.html) {
				t.Fatalf("the page shows %s, want it to hold %s", m.HTML, c.html)
			}
		})
	}
}

// What a webhook refuses, and how: a wrong secret and an unknown id get
// the same 404; bad bodies 400; a body over 64 KiB 413; a text over
// -max-message 400; an archived room 403; a deleted webhook 404 at once.
func TestWebhookRefusals(t *testing.T) {
	w := newBotWorld(t, chat.Options{MaxMessageLen: 100})
	hook, path := w.makeHook(t, w.ops.ID, "")
	if hook.Name != DefaultWebhookName {
		t.Fatalf("a webhook without a name is called %q, want %q", hook.Name, DefaultWebhookName)
	}
	before := sendTo(t, w.srv, w.ada, w.ops.Slug, "before the refusals")
	_, other := w.makeHook(t, w.lounge.ID, "")
	otherSecret := other[strings.LastIndex(other, "/")+1:]

	wrong := "/hooks/" + strconv.FormatInt(hook.ID, 10) + "/" + otherSecret
	unknown := "/hooks/999/" + otherSecret
	code1, body1 := hookPost(t, w.srv, wrong, "text/plain", "hi")
	code2, body2 := hookPost(t, w.srv, unknown, "text/plain", "hi")
	if code1 != 404 || code2 != 404 || body1 != body2 {
		t.Fatalf("wrong secret: %d %s; unknown id: %d %s; want the same 404", code1, body1, code2, body2)
	}
	for _, p := range []string{"/hooks/x/" + otherSecret, "/hooks/1/short", "/hooks/-1/" + otherSecret} {
		if code, body := hookPost(t, w.srv, p, "text/plain", "hi"); code != 404 || body != body1 {
			t.Fatalf("%s: %d %s, want the same 404", p, code, body)
		}
	}
	for _, c := range []struct{ name, contentType, body, want string }{
		{"empty", "text/plain", "\n", "no text"},
		{"JSON without text", "application/json", `{"username": "x"}`, "no text"},
		{"not JSON", "application/json", `{"text": `, "JSON object"},
		{"bad payload=", "application/x-www-form-urlencoded", "payload=%7B", "payload must be"},
		{"not UTF-8", "text/plain", "\xff\xfe", "UTF-8"},
		{"half a surrogate pair", "application/json", `{"text": "a\ud800b"}`, "UTF-8"},
		{"half a surrogate pair in payload=", "application/x-www-form-urlencoded", `payload=%7B%22text%22%3A%22a%5Cud800b%22%7D`, "UTF-8"},
		{"not UTF-8 in payload=", "application/x-www-form-urlencoded", `payload=%7B%22text%22%3A%22a%FFb%22%7D`, "UTF-8"},
		{"too long", "text/plain", strings.Repeat("a", 101), "longer than 100"},
		{"too many blocks", "application/json", `{"blocks": [` + strings.Repeat(`{"type": "divider"},`, 100) + `{"type": "divider"}]}`, "at most 100"},
	} {
		code, body := hookPost(t, w.srv, path, c.contentType, c.body)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Fatalf("%s: %d %s, want 400 with %q", c.name, code, body, c.want)
		}
	}
	if code, body := hookPost(t, w.srv, path, "text/plain", strings.Repeat("a", 64<<10+1)); code != 413 {
		t.Fatalf("a body over 64 KiB: %d %s, want 413", code, body)
	}
	if got := w.lastIn(t, w.ops.Slug, w.bob).ID; got != before {
		t.Fatalf("a refused post stored message %d", got)
	}

	// Credentials a tool sends along are not read: the secret is the URL.
	for _, auth := range []string{"Basic dXNlcjpwYXNz", "Bearer " + w.token, "Bearer nonsense"} {
		if code, body := call(t, w.srv, "POST", path, "", `{"text": "with credentials"}`, map[string]string{"Authorization": auth}); code != 200 {
			t.Fatalf("with Authorization: %s: %d %s, want 200", auth, code, body)
		}
		if code, body := call(t, w.srv, "POST", wrong, "", `{"text": "with credentials"}`, map[string]string{"Authorization": auth}); code != 404 || body != body1 {
			t.Fatalf("a wrong secret with Authorization: %s: %d %s, want the same 404", auth, code, body)
		}
	}

	// Archived: refused with the reason.
	if code, body := call(t, w.srv, "PATCH", "/rooms/"+w.ops.Slug, w.ada, `{"archived": true}`, nil); code != 200 {
		t.Fatalf("archive: %d %s", code, body)
	}
	if code, body := hookPost(t, w.srv, path, "text/plain", "hi"); code != 403 || !strings.Contains(body, "archived") {
		t.Fatalf("to an archived room: %d %s, want 403 archived", code, body)
	}

	// Deleted: 404 at once, and the account leaves the room.
	if code, body := hookPost(t, w.srv, other, "text/plain", "still here"); code != 200 {
		t.Fatalf("lounge hook: %d %s", code, body)
	}
	if _, err := w.store.DeleteWebhook(context.Background(), hookIDOf(t, other)); err != nil {
		t.Fatal(err)
	}
	if code, body := hookPost(t, w.srv, other, "text/plain", "hi"); code != 404 || body != body1 {
		t.Fatalf("a deleted webhook: %d %s, want the same 404", code, body)
	}
}

func hookIDOf(t *testing.T, path string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(strings.Split(path, "/")[2], 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return id
}

// A webhook posts at the bot rate, its own: another webhook is not held
// back by it.
func TestWebhookRateLimit(t *testing.T) {
	w := newBotWorld(t, chat.Options{BotRate: 0.001, BotBurst: 2})
	_, path := w.makeHook(t, w.ops.ID, "Sensor")
	_, other := w.makeHook(t, w.ops.ID, "Sensor")
	for i := range 2 {
		if code, body := hookPost(t, w.srv, path, "text/plain", "reading "+strconv.Itoa(i)); code != 200 {
			t.Fatalf("post %d: %d %s", i, code, body)
		}
	}
	code, _, body := roomCall(t, w.srv, "POST", path, "", "one too many", map[string]string{"Content-Type": "text/plain"})
	if code != 429 || !strings.Contains(body, "error") {
		t.Fatalf("past the burst: %d %s, want 429", code, body)
	}
	if code, body := hookPost(t, w.srv, other, "text/plain", "the other one"); code != 200 {
		t.Fatalf("another webhook: %d %s, want 200", code, body)
	}
	if m := w.lastIn(t, w.ops.Slug, w.ada); m.User != "Sensor 2" {
		t.Fatalf("the second webhook named Sensor posts as %q, want Sensor 2", m.User)
	}
}

// A webhook's message reaches a member's socket live and the history,
// marked as a bot's, like any message.
func TestWebhookReachesSocketsAndHistory(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	_, path := w.makeHook(t, w.ops.ID, "Washer")
	c := openSocket(t, w.srv, w.bob)
	if code, body := hookPost(t, w.srv, path, "text/plain", "The washing machine is done"); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	frames := framesUntil(t, c, "Bob's socket", isText(t, "The washing machine is done"))
	m, _ := frames[len(frames)-1].message(t)
	if !m.Bot || m.User != "Washer" || m.Room != w.ops.ID {
		t.Fatalf("Bob's socket got %+v, want Washer's bot message in ops", m)
	}
	if h := w.lastIn(t, w.ops.Slug, w.ada); h.ID != m.ID || !h.Bot {
		t.Fatalf("history: %+v, want message %d marked as a bot's", h, m.ID)
	}
}

// A room's webhooks API: its creator (or an admin) makes, lists and
// deletes; a member who is not its creator gets 403, a guest 401,
// another origin 403, a bot's token 403.
func TestRoomWebhooksAPI(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	garden := createRoom(t, w.srv, w.bob, `{"name": "Garden", "kind": "private", "members": ["Ada"]}`, http.StatusCreated)
	hooks := "/rooms/" + garden.Slug + "/webhooks"

	code, body := call(t, w.srv, "POST", hooks, w.bob, `{"name": "Sprinkler"}`, nil)
	var made struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		URL      string `json:"url"`
		Curl     string `json:"curl"`
		CurlJSON string `json:"curl_json"`
	}
	if err := json.Unmarshal([]byte(body), &made); code != 201 || err != nil || made.Name != "Sprinkler" || !strings.HasPrefix(made.URL, w.srv.URL+"/hooks/") {
		t.Fatalf("the creator makes a webhook: %d %s", code, body)
	}
	if !strings.Contains(body, `"last_used":null`) || !strings.Contains(body, `"created":1`) {
		t.Fatalf("the new webhook's times: %s, want created in Unix ms and last_used null", body)
	}
	if want := "curl -d 'The washing machine is done' " + made.URL; made.Curl != want || !strings.Contains(made.CurlJSON, "application/json") {
		t.Fatalf("curl lines %q / %q, want %q", made.Curl, made.CurlJSON, want)
	}
	path := strings.TrimPrefix(made.URL, w.srv.URL)
	if code, body := hookPost(t, w.srv, path, "text/plain", "watering done"); code != 200 {
		t.Fatalf("the new URL: %d %s", code, body)
	}
	code, body = call(t, w.srv, "GET", hooks, w.ada, "", nil)
	if code != 200 || !strings.Contains(body, `"name":"Sprinkler"`) || strings.Contains(body, path[strings.LastIndex(path, "/")+1:]) || !strings.Contains(body, `"last_used":1`) {
		t.Fatalf("an admin lists: %d %s, want Sprinkler, used, and no secret", code, body)
	}

	opsHooks := "/rooms/" + w.ops.Slug + "/webhooks"
	for _, c := range []struct {
		name, method, path, session, body string
		header                            map[string]string
		want                              int
	}{
		{"a member, not the creator, makes", "POST", opsHooks, w.bob, `{}`, nil, 403},
		{"a member, not the creator, lists", "GET", opsHooks, w.bob, "", nil, 403},
		{"a guest deletes", "DELETE", hooks + "/" + strconv.FormatInt(made.ID, 10), "", "", nil, 401},
		{"a guest makes", "POST", hooks, "", `{}`, nil, 401},
		{"a guest lists", "GET", hooks, "", "", nil, 401},
		{"another site's page", "POST", hooks, w.bob, `{}`, map[string]string{"Origin": "https://evil.example"}, 403},
		{"a form", "POST", hooks, w.bob, `{}`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"a bot's token", "POST", "/rooms/" + w.ops.Slug + "/webhooks", "", `{}`, map[string]string{"Authorization": "Bearer " + w.token}, 403},
	} {
		if code, body := call(t, w.srv, c.method, c.path, c.session, c.body, c.header); code != c.want {
			t.Fatalf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if code, body := call(t, w.srv, "DELETE", opsHooks+"/1", w.bob, "", nil); code != 403 {
		t.Fatalf("a member, not the creator, deletes: %d %s, want 403", code, body)
	}
	// Another room's webhook is not this room's to delete.
	opsHook, opsPath := w.makeHook(t, w.ops.ID, "Ops hook")
	if code, body := call(t, w.srv, "DELETE", hooks+"/"+strconv.FormatInt(opsHook.ID, 10), w.bob, "", nil); code != 404 {
		t.Fatalf("Bob deletes ops's webhook through garden: %d %s, want 404", code, body)
	}
	if code, _ := hookPost(t, w.srv, opsPath, "text/plain", "still mine"); code != 200 {
		t.Fatalf("ops's webhook after Bob's try: %d", code)
	}

	if code, body := call(t, w.srv, "DELETE", hooks+"/"+strconv.FormatInt(made.ID, 10), w.bob, "", nil); code != 200 {
		t.Fatalf("the creator deletes: %d %s", code, body)
	}
	if code, _ := hookPost(t, w.srv, path, "text/plain", "again"); code != 404 {
		t.Fatalf("the deleted URL: %d, want 404", code)
	}
	var lines int
	for _, e := range mustAudit(t, w.store) {
		if e.Action == auditWebhookCreate || e.Action == auditWebhookDelete {
			lines++
		}
	}
	if lines != 2 {
		t.Fatalf("%d audit lines of webhooks, want 2 (create, delete)", lines)
	}
}

func mustAudit(t *testing.T, store *db.Store) []db.AuditEntry {
	t.Helper()
	lines, err := store.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// hookURLRe finds a webhook's URL on a page.
var hookURLRe = regexp.MustCompile(`http://[^"' ]+/hooks/[0-9]+/[A-Za-z0-9_-]{43}`)

// The dashboard's Webhooks panel: admins only (a member 403, a guest 401,
// another site's page 403); the URL and the curl line are shown once;
// the list shows id, room, created and last used; Delete makes the URL 404
// at once.
func TestWebhooksPanel(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	ops := strconv.FormatInt(w.ops.ID, 10)
	_, victimPath := w.makeHook(t, w.lounge.ID, "Doorbell")
	victim := strconv.FormatInt(hookIDOf(t, victimPath), 10)
	for _, path := range []string{"/admin/webhooks", "/admin/webhooks/" + victim + "/delete"} {
		form := url.Values{"name": {"Washer"}, "room": {ops}}
		if code, _, body := as(t, w.srv, "POST", path, w.bob, form); code != http.StatusForbidden {
			t.Errorf("a member's POST %s: %d %s, want 403", path, code, body)
		}
		if code, _, body := as(t, w.srv, "POST", path, "", form); code != http.StatusUnauthorized {
			t.Errorf("a guest's POST %s: %d %s, want 401", path, code, body)
		}
		resp, body := request(t, w.srv, "POST", path, form, map[string]string{"Cookie": personCookie + "=" + w.ada, "Origin": "https://evil.example"})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("another site's page, as Ada, POST %s: %d %s, want 403", path, resp.StatusCode, body)
		}
		if code, _, body := w.asBot(t, "POST", path, "", nil); code != http.StatusForbidden {
			t.Errorf("a bot's POST %s: %d %s, want 403", path, code, body)
		}
	}
	if code, _ := hookPost(t, w.srv, victimPath, "text/plain", "ding dong"); code != 200 {
		t.Fatalf("the doorbell's webhook after the refused deletes: %d, want 200", code)
	}

	code, _, page := as(t, w.srv, "POST", "/admin/webhooks", w.ada, url.Values{"name": {"Washer"}, "room": {ops}})
	hookURL := hookURLRe.FindString(page)
	if code != 200 || hookURL == "" || !strings.Contains(page, `data-webhook="Washer"`) {
		t.Fatalf("Ada makes Washer: %d, URL %q", code, hookURL)
	}
	if want := "curl -d &#39;The washing machine is done&#39; " + hookURL; !strings.Contains(page, want) {
		t.Fatalf("the page has no curl line %q", want)
	}
	path := strings.TrimPrefix(hookURL, w.srv.URL)
	if code, body := hookPost(t, w.srv, path, "application/x-www-form-urlencoded", "The washing machine is done"); code != 200 {
		t.Fatalf("the URL from the page: %d %s", code, body)
	}
	if m := w.lastIn(t, w.ops.Slug, w.bob); m.Message != "The washing machine is done" || m.User != "Washer" || !m.Bot {
		t.Fatalf("ops shows %+v", m)
	}
	_, _, again := as(t, w.srv, "GET", "/admin", w.ada, nil)
	if strings.Contains(again, hookURL) || !strings.Contains(again, `data-webhook="Washer"`) || !strings.Contains(again, `data-webhook="Doorbell"`) {
		t.Fatalf("the dashboard shows the URL again, or not both webhooks")
	}
	for _, bad := range []url.Values{
		{"name": {"Owl"}, "room": {"999"}},                 // no such room
		{"name": {"Owl"}, "room": {"x"}},                   // not an id
		{"name": {"bob"}, "room": {ops}},                   // a person's: 409, see below
		{"name": {strings.Repeat("o", 40)}, "room": {ops}}, // too long
	} {
		code, _, body := as(t, w.srv, "POST", "/admin/webhooks", w.ada, bad)
		if bad.Get("name") == "bob" {
			if code != http.StatusConflict || !strings.Contains(body, "a person's name") || strings.Contains(body, `data-webhook="bob 2"`) {
				t.Errorf("a webhook named as a person: %d, want 409 saying it is a person's name", code)
			}
			continue
		}
		if code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("making a webhook with %v: %d %s, want 400", bad, code, body)
		}
	}

	washer := strconv.FormatInt(hookIDOf(t, path), 10)
	if code, loc, body := as(t, w.srv, "POST", "/admin/webhooks/"+washer+"/delete", w.ada, nil); code != http.StatusSeeOther || loc != "/admin#webhooks" {
		t.Fatalf("Ada deletes Washer: %d %s %s", code, loc, body)
	}
	if code, _ := hookPost(t, w.srv, path, "text/plain", "again"); code != 404 {
		t.Fatalf("Washer's URL after its deletion: %d, want 404", code)
	}
	if code, _, _ := as(t, w.srv, "POST", "/admin/webhooks/"+washer+"/delete", w.ada, nil); code != 404 {
		t.Fatalf("deleting it again: %d, want 404", code)
	}
}

// An admin turns a webhook off by deactivating the account it posts as
// (the dashboard lists it among the people): its posts are refused, 403
// saying why, and nothing is stored, until the account is reactivated.
func TestADeactivatedWebhookPostsNothing(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	hook, path := w.makeHook(t, w.ops.ID, "Grafana")
	deactivate := fmt.Sprintf("/admin/people/%d/deactivate", hook.AccountID)
	if code, _, body := as(t, w.srv, "POST", deactivate, w.ada, nil); code != http.StatusSeeOther {
		t.Fatalf("deactivating the webhook's account: %d %s", code, body)
	}
	sendTo(t, w.srv, w.ada, w.ops.Slug, "before the webhook is off")
	before := w.lastIn(t, w.ops.Slug, w.ada)
	if code, body := hookPost(t, w.srv, path, "text/plain", "disk full"); code != http.StatusForbidden || !strings.Contains(body, "turned off") {
		t.Fatalf("a post to the deactivated webhook: %d %s, want 403 saying it is turned off", code, body)
	}
	if m := w.lastIn(t, w.ops.Slug, w.ada); m.ID != before.ID {
		t.Fatalf("the deactivated webhook's post was stored: %+v", m)
	}
	if code, _, body := as(t, w.srv, "POST", fmt.Sprintf("/admin/people/%d/reactivate", hook.AccountID), w.ada, nil); code != http.StatusSeeOther {
		t.Fatalf("reactivating: %d %s", code, body)
	}
	if code, body := hookPost(t, w.srv, path, "text/plain", "disk fine again"); code != http.StatusOK {
		t.Fatalf("a post after reactivation: %d %s", code, body)
	}
	if m := w.lastIn(t, w.ops.Slug, w.ada); m.Message != "disk fine again" || m.User != "Grafana" {
		t.Fatalf("the room's newest after reactivation: %+v", m)
	}
}

// A webhook may not take a person's name, in any spelling nor numbered
// ("Bob 2" would read as Bob's but for the bot tag); a bot's name, or
// another webhook's, is numbered on.
func TestAWebhookIsNotNamedLikeAPerson(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	path := "/rooms/" + w.ops.Slug + "/webhooks"
	for _, name := range []string{"Bob", "bob", "ADA"} {
		code, _, body := roomCall(t, w.srv, "POST", path, w.ada, `{"name": "`+name+`"}`, nil)
		if code != http.StatusConflict || !strings.Contains(body, "a person's name") {
			t.Fatalf("a webhook named %q: %d %s, want 409 saying it is a person's name", name, code, body)
		}
	}
	code, _, body := roomCall(t, w.srv, "POST", path, w.ada, `{"name": "Heron"}`, nil)
	if code != http.StatusCreated || !strings.Contains(body, `"Heron 2"`) {
		t.Fatalf("a webhook named like the bot Heron: %d %s, want 201 as Heron 2", code, body)
	}
}
