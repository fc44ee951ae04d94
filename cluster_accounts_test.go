package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Accounts and sign-ins are the cluster's: the first admin, made through
// one node's set-up link, is signed in on every node (the cookie goes to
// all three, as it would through a load balancer); her message sent
// through another node is hers on all of them; so are a room she makes,
// what she posts in it, a file, a bot; signing out on one node closes her
// page on another.
func TestClusterSharesAccountsAndSignIns(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes: not in -short")
	}
	if raceEnabled {
		t.Skip("the processes run a binary built without the race detector: the plain run tests them")
	}
	// A bot's outgoing webhook: it counts its calls, and answers.
	var calls atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "all systems nominal")
	}))
	defer receiver.Close()
	_, port, _ := net.SplitHostPort(receiver.Listener.Addr().String())

	c := newTestCluster(t, 3)
	// No admin password: each node logs a set-up link of its own. The
	// nodes trust X-Forwarded-For, as behind Caddy, and let bots call the
	// receiver.
	c.env = []string{"NOCHAT_ADMIN_PASSWORD=", "NOCHAT_LOG_LEVEL=info", "NOCHAT_TRUST_PROXY=true", "NOCHAT_WEBHOOK_ALLOW=localhost:" + port}
	c.startAll()
	n1, n2, n3 := c.nodes[0].p, c.nodes[1].p, c.nodes[2].p
	_, token := processSetupLink(t, n1)
	_, other := processSetupLink(t, n2)

	p := fetch(t, "POST", n1.url+"/setup", "", url.Values{"token": {token}, "name": {"Ann"}, "password": {"correct horse"}})
	session := p.cookies["nochat_session"]
	if p.status != http.StatusSeeOther || session == "" {
		t.Fatalf("the first admin through n1: %d with cookies %v, want 303 signed in", p.status, p.cookies)
	}
	cookie := "nochat_session=" + session
	// Her next request may reach any node: it knows her session at once.
	for _, n := range []*process{n2, n3} {
		if p := fetch(t, "GET", n.url+"/admin/live", cookie, nil); p.status != http.StatusOK {
			t.Fatalf("Ann's dashboard on %s: %d, want 200: she is signed in on every node", n.url, p.status)
		}
	}
	// One first admin for the cluster: n2's own link is spent too.
	if p := fetch(t, "GET", n2.url+"/setup?token="+other, "", nil); p.status != http.StatusGone {
		t.Errorf("n2's set-up link once n1's made an admin: %d, want 410", p.status)
	}
	if p := fetch(t, "POST", n2.url+"/setup", "", url.Values{"token": {other}, "name": {"Eve"}, "password": {"correct horse"}}); p.status != http.StatusGone || len(p.cookies) > 0 {
		t.Errorf("n2's set-up link used after n1's: %d %v, want 410 and no session", p.status, p.cookies)
	}

	// A page subscribes to pushes with the key of whichever node answers
	// it, and any node may push to it: the nodes agree on one key (each
	// says it is starting until they have).
	var keys []string
	for _, n := range []*process{n1, n2, n3} {
		p := fetch(t, "GET", n.url+"/push/key", cookie, nil)
		for deadline := time.Now().Add(30 * time.Second); p.status == http.StatusServiceUnavailable && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			p = fetch(t, "GET", n.url+"/push/key", cookie, nil)
		}
		var k struct{ Key string }
		if p.status != http.StatusOK || json.Unmarshal([]byte(p.body), &k) != nil || k.Key == "" {
			t.Fatalf("the push key on %s: %d %s", n.url, p.status, p.body)
		}
		keys = append(keys, k.Key)
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("the nodes' push keys: %q, want one key", keys)
	}

	// Her page on n1; she sends through n3.
	page := dialSignedIn(t, n1.url, cookie)
	other3 := dialSignedIn(t, n3.url, cookie)
	id := other3.sendOK("hello from Ann, through n3", "a1")
	got := page.next()
	if got.Type != "message" || got.Data.ID != id || got.Data.User != "Ann" {
		t.Fatalf("Ann's page on n1 got %+v, want her message %d", got, id)
	}
	var history []struct {
		ID     int64  `json:"id"`
		User   string `json:"user"`
		UserID *int64 `json:"user_id"`
	}
	// n2 applies it a moment later.
	for deadline := time.Now().Add(5 * time.Second); len(history) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p = fetch(t, "GET", n2.url+"/discussion", "", nil)
		if err := json.Unmarshal([]byte(p.body), &history); err != nil {
			t.Fatalf("n2's history: %v: %s", err, p.body)
		}
	}
	if len(history) != 1 || history[0].ID != id || history[0].User != "Ann" || history[0].UserID == nil {
		t.Fatalf("n2's history: %+v, want Ann's message %d under her account", history, id)
	}

	// She renames herself through n2: her page on n1 hears of it, and her
	// message shows her new name on every node.
	if p := fetch(t, "POST", n2.url+"/account/name", cookie, url.Values{"name": {"Annie"}}); p.status != http.StatusSeeOther {
		t.Fatalf("a rename through n2: %d, want 303 to the account page", p.status)
	}
	if f := page.next(); f.Type != "person" || f.Data.User != "Annie" {
		t.Errorf("Ann's page on n1 after her rename on n2: %+v, want her new name", f)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p = fetch(t, "GET", n3.url+"/discussion", "", nil)
		if strings.Contains(p.body, `"user":"Annie"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n3's history after the rename: %s, want Annie's message", p.body)
		}
	}

	// She makes a room through n2: her page on n1 hears of it, and what
	// she posts in it through n3 reaches that page, and n1's history.
	status, body := jsonCall(t, "POST", n2.url+"/rooms", cookie, `{"name": "Garden", "kind": "open"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"slug":"garden"`) {
		t.Fatalf("a new room through n2: %d %s, want 201", status, body)
	}
	for _, want := range []string{"room", "membership"} {
		if f := page.next(); f.Type != want {
			t.Fatalf("Ann's page on n1 after her room through n2: %+v, want a %s frame", f, want)
		}
	}
	status, body = jsonCall(t, "POST", n3.url+"/rooms/garden/messages", cookie, `{"message": "tomatoes are in"}`)
	if status != http.StatusCreated {
		t.Fatalf("a message in the new room through n3: %d %s", status, body)
	}
	if f := page.next(); f.Type != "message" || f.Data.Message != "tomatoes are in" {
		t.Fatalf("Ann's page on n1 got %+v, want her message in Garden", f)
	}
	if status, body := jsonCall(t, "GET", n1.url+"/rooms/garden/messages", cookie, ""); status != http.StatusOK || !strings.Contains(body, "tomatoes are in") {
		t.Errorf("Garden's history on n1: %d %s", status, body)
	}

	// A bot made on n2's dashboard, with an outgoing webhook: Ann
	// mentions it through n3, and it is called once (by n3, not by every
	// node), its answer reaching her page on n1; its token works on n1.
	p = fetchWith(t, "POST", n2.url+"/admin/bots", cookie, url.Values{"name": {"Heron"}, "room": {"1"}, "webhook": {"http://localhost:" + port + "/hook"}}, http.Header{"Origin": {n2.url}})
	botToken := botTokenRe.FindString(p.body)
	if p.status != http.StatusOK || botToken == "" {
		t.Fatalf("a bot through n2: %d, token %q", p.status, botToken)
	}
	req, err := http.NewRequest("GET", n1.url+"/rooms/lobby/messages/latest/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+botToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the bot's token on n1: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	time.Sleep(1200 * time.Millisecond) // a node reads the bots' webhooks again once a second
	dialSignedIn(t, n3.url, cookie).sendOK("@Heron status?", "a2")
	for _, want := range []string{"@Heron status?", "all systems nominal"} {
		if f := page.next(); f.Type != "message" || f.Data.Message != want {
			t.Fatalf("Ann's page on n1 got %+v, want the message %q", f, want)
		}
	}
	time.Sleep(time.Second) // time for another node's call, were there one
	if n := calls.Load(); n != 1 {
		t.Errorf("the bot's webhook was called %d times for one mention, want once", n)
	}

	// A file she sends through n2 reaches her page on n1, and n1 and n3
	// serve it, byte for byte: 6 MB, six times what a NATS message takes
	// unless told otherwise.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, err := mw.CreateFormFile("file", "plan.txt")
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Repeat("rows of tomatoes, then beans, then the row of leeks by the fence\n", 6<<20/64)
	io.WriteString(fw, plan)
	mw.WriteField("message", "the plan")
	mw.Close()
	req, err = http.NewRequest("POST", n2.url+"/rooms/garden/files", &form)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Origin", n2.url)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sent struct {
		ID int64 `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(answer, &sent) != nil {
		t.Fatalf("a file through n2: %d %s", resp.StatusCode, answer)
	}
	if f := page.next(); f.Type != "message" || f.Data.ID != sent.ID || f.Data.Message != "the plan" {
		t.Fatalf("Ann's page on n1 got %+v, want her file's message %d", f, sent.ID)
	}
	for _, n := range []*process{n1, n3} {
		if p := fetch(t, "GET", n.url+"/files/"+strconv.FormatInt(sent.ID, 10), cookie, nil); p.status != http.StatusOK || p.body != plan {
			t.Errorf("the file on %s: %d, %d bytes; want the plan's %d", n.url, p.status, len(p.body), len(plan))
		}
	}

	// Anyone may join, she says through n1; Bob joins through n3 (from an
	// address of his own, behind the proxy every node trusts), and her
	// ban through n2, his messages deleted with it, closes his page on n1,
	// refuses his address on every node and takes his words from every
	// node's history.
	if p := fetch(t, "POST", n1.url+"/admin/join-policy", cookie, url.Values{"policy": {"open"}}); p.status != http.StatusSeeOther {
		t.Fatalf("opening joins through n1: %d %s", p.status, p.body)
	}
	const bobsAddress = "203.0.113.9"
	fromBob := http.Header{"X-Forwarded-For": {bobsAddress}}
	var bob string
	for deadline := time.Now().Add(5 * time.Second); bob == ""; time.Sleep(50 * time.Millisecond) {
		p := fetchWith(t, "POST", n3.url+"/join", "", url.Values{"name": {"Bob"}, "password": {"correct horse"}}, fromBob)
		if s := p.cookies["nochat_session"]; p.status == http.StatusSeeOther && s != "" {
			bob = "nochat_session=" + s
		} else if time.Now().After(deadline) {
			t.Fatalf("Bob joining through n3 once joins are open: %d", p.status)
		}
	}
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second}).Dial(wsURL(n1.url),
		http.Header{"Cookie": {bob}, "Origin": {n1.url}, "X-Forwarded-For": {bobsAddress}})
	if err != nil {
		t.Fatal(err)
	}
	bobPage := helloed(t, conn)
	said := bobPage.sendOK("Bob here, through n1", "b1")
	p = fetch(t, "GET", n1.url+"/discussion", "", nil)
	history = nil
	if err := json.Unmarshal([]byte(p.body), &history); err != nil {
		t.Fatal(err)
	}
	var bobID int64
	for _, m := range history {
		if m.ID == said && m.UserID != nil {
			bobID = *m.UserID
		}
	}
	if bobID == 0 {
		t.Fatalf("Bob's message %d is not in n1's history under an account: %+v", said, history)
	}
	// A guest on n1 shares Bob's address.
	neighbourConn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second}).Dial(wsURL(n1.url)+"?user=Neighbour",
		http.Header{"Origin": {n1.url}, "X-Forwarded-For": {bobsAddress}})
	if err != nil {
		t.Fatal(err)
	}
	neighbour := helloed(t, neighbourConn)
	req, err = http.NewRequest("POST", n2.url+"/admin/people/"+strconv.FormatInt(bobID, 10)+"/ban", strings.NewReader("delete_messages=on"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Origin", n2.url)
	req.Header.Set("Accept", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("banning Bob through n2: %v %v", resp, err)
	}
	closedSaying(t, "Bob's page on n1 after n2 banned him", bobPage, 4003, "your account was banned by an admin")
	// The guest at his address is told of the address, not of an account.
	closedSaying(t, "a guest's page at Bob's address on n1 after n2 banned him", neighbour, 4003, "this address was banned from the chat by an admin")
	// His message is gone from every node's history with the ban.
	for _, n := range []*process{n1, n3} {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			p := fetch(t, "GET", n.url+"/discussion", "", nil)
			if p.status == http.StatusOK && !strings.Contains(p.body, "Bob here") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's history after Bob's ban with his messages deleted: %d %s", n.url, p.status, p.body)
			}
		}
	}
	for _, n := range []*process{n1, n3} {
		if p := fetchWith(t, "GET", n.url+"/", "", nil, fromBob); p.status != http.StatusForbidden {
			t.Errorf("Bob's address on %s after his ban through n2: %d, want 403", n.url, p.status)
		}
		if p := fetchWith(t, "GET", n.url+"/", "", nil, http.Header{"X-Forwarded-For": {"203.0.113.10"}}); p.status != http.StatusOK {
			t.Errorf("another address on %s: %d, want 200", n.url, p.status)
		}
	}

	// A guest, Zed, chats through n3 from an address of his own; her ban
	// of that address through n1 closes his page there and refuses the
	// address on every node, until she lifts it through n3.
	const zedsAddress = "203.0.113.20"
	fromZed := http.Header{"X-Forwarded-For": {zedsAddress}}
	conn, _, err = (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second}).Dial(wsURL(n3.url)+"?user=Zed",
		http.Header{"Origin": {n3.url}, "X-Forwarded-For": {zedsAddress}})
	if err != nil {
		t.Fatal(err)
	}
	zedPage := helloed(t, conn)
	if p := fetch(t, "POST", n1.url+"/admin/bans", cookie, url.Values{"address": {zedsAddress}, "name": {"Zed"}}); p.status != http.StatusSeeOther {
		t.Fatalf("banning Zed's address through n1: %d %s", p.status, p.body)
	}
	closedSaying(t, "Zed's page on n3 after n1 banned his address", zedPage, 4003, "this address was banned from the chat by an admin")
	// Each node applies the log in its own time: a node is asked until it
	// answers want.
	answers := func(n *process, want int, what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			p := fetchWith(t, "GET", n.url+"/", "", nil, fromZed)
			if p.status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Zed's address on %s %s: %d, want %d", n.url, what, p.status, want)
			}
		}
	}
	for _, n := range []*process{n1, n2, n3} {
		answers(n, http.StatusForbidden, "after the ban through n1")
	}
	if p := fetch(t, "POST", n3.url+"/admin/bans/lift", cookie, url.Values{"address": {zedsAddress}}); p.status != http.StatusSeeOther {
		t.Fatalf("lifting the ban through n3: %d %s", p.status, p.body)
	}
	for _, n := range []*process{n1, n2, n3} {
		answers(n, http.StatusOK, "after the ban was lifted through n3")
	}

	// She signs out on n2: her pages on n1 and n3 close, and her cookie
	// opens nothing anywhere.
	if p := fetch(t, "POST", n2.url+"/signout", cookie, url.Values{}); p.status >= 400 {
		t.Fatalf("signing out on n2: %d %s", p.status, p.body)
	}
	for name, c := range map[string]*v1{"n1": page, "n3": other3} {
		closedSignedOut(t, name, c)
	}
	for _, n := range []*process{n1, n3} {
		if p := fetch(t, "GET", n.url+"/admin/live", cookie, nil); p.status == http.StatusOK {
			t.Errorf("Ann's dashboard on %s after she signed out on n2: 200", n.url)
		}
	}
}

// botTokenRe finds a bot's token on the dashboard.
var botTokenRe = regexp.MustCompile(`nochat_bot_[A-Za-z0-9_-]{43}`)

// jsonCall makes a JSON request with a session cookie, as the page does,
// and returns the answer's status and body.
func jsonCall(t *testing.T, method, u, cookie, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// processSetupLink is the set-up link a node process logged.
func processSetupLink(t *testing.T, p *process) (link, token string) {
	t.Helper()
	m := setupLinkRe.FindStringSubmatch(p.lastLog())
	if m == nil {
		t.Fatalf("no set-up link in the log:\n%s", p.lastLog())
	}
	return m[1], m[2]
}

// dialSignedIn opens a nochat.v1 socket with a session cookie, as the page
// does, and reads its hello.
func dialSignedIn(t *testing.T, base, cookie string) *v1 {
	t.Helper()
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second}).Dial(wsURL(base), http.Header{"Cookie": {cookie}, "Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	return helloed(t, conn)
}

// closedSignedOut waits for c to close because its sign-in ended.
func closedSignedOut(t *testing.T, name string, c *v1) {
	t.Helper()
	closedSaying(t, "the page on "+name, c, websocket.ClosePolicyViolation, "signed out")
}

// closedSaying waits for c to close with code and a reason that holds
// text; frames before the close are skipped.
func closedSaying(t *testing.T, what string, c *v1, code int, text string) {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Text, text) {
			t.Errorf("%s: %v, want a close %d saying %q", what, err, code, text)
		}
		return
	}
}
