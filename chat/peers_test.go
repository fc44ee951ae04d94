package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
	"nochat/db/dbtest"
)

// recordingPusher hands each push on, whom to and what.
type recordingPusher struct{ got chan pushed }

type pushed struct {
	user int64
	n    chat.Notification
}

func (p *recordingPusher) Push(user int64, n chat.Notification) { p.got <- pushed{user, n} }

// clusterNode is a hub of a two-node cluster in one process: its own
// database, whose accounts and rooms the test makes in the same order
// as on the other node, so they have the same ids, as the log gives them.
type clusterNode struct {
	*room
	ids map[string]chat.Identity
}

func newClusterNode(t *testing.T, net *peerNet, name string, opts chat.Options) *clusterNode {
	t.Helper()
	opts.Peers = netPeer{net, name}
	n := &clusterNode{room: newRoom(t, opts), ids: map[string]chat.Identity{}}
	for _, who := range []string{"Ann", "Bob"} {
		n.ids[who] = accountIn(t, n.store, who, db.RoleMember)
	}
	return n
}

// accountIn makes, in store, the account of a person called name with
// role, and returns them as the hub takes them.
func accountIn(t *testing.T, store *db.Store, name, role string) chat.Identity {
	t.Helper()
	a, err := store.CreateAccount(context.Background(), db.Account{Name: name, NameKey: strings.ToLower(name), PasswordHash: "x", Role: role, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return chat.Identity{UserID: a.ID, Name: name, Role: role}
}

// dialAs opens a nochat.v1 socket on n signed in as who.
func (n *clusterNode) dialAs(t *testing.T, who string) *wsClient {
	t.Helper()
	id := n.ids[who]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.hub.ServeWSAs(w, r, id) }))
	t.Cleanup(srv.Close)
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn, proto: "nochat.v1"}
	c.hello = c.expect("hello")
	return c
}

type presenceFrame struct {
	Online int `json:"online"`
	People []struct {
		User    string `json:"user"`
		UserID  *int64 `json:"user_id"`
		Devices int    `json:"devices"`
	} `json:"people"`
}

// waitFrame reads c's frames, presence and typing too, until one of typ
// satisfies ok; it fails after readWait.
func waitFrame[T any](t *testing.T, c *wsClient, typ, what string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(readWait)
	for {
		c.conn.SetReadDeadline(deadline)
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var f frame
		var d T
		if json.Unmarshal(b, &f) == nil && f.Type == typ && json.Unmarshal(f.Data, &d) == nil && ok(d) {
			return d
		}
	}
}

// On a cluster a person is one person whichever nodes serve their tabs:
// presence lists them once, with their account and all their devices;
// typing in any room they share reaches the room's people on every node
// (not the typist's own tabs); and someone chatting through one node is
// not pushed to by another as if away.
func TestAPersonIsOnePersonAcrossNodes(t *testing.T) {
	ctx := context.Background()
	net := newPeerNet()
	pusher := &recordingPusher{got: make(chan pushed, 16)}
	const grace = 300 * time.Millisecond
	n1 := newClusterNode(t, net, "n1", chat.Options{Pusher: pusher, PushGrace: grace, MsgRate: -1})
	n2 := newClusterNode(t, net, "n2", chat.Options{MsgRate: -1})
	ann, bob := n1.ids["Ann"], n1.ids["Bob"]
	if n2.ids["Ann"].UserID != ann.UserID || n2.ids["Bob"].UserID != bob.UserID {
		t.Fatalf("the nodes' accounts differ: %+v and %+v", n1.ids, n2.ids)
	}
	// Ann's private room with Bob, on both nodes, under one id.
	var garden [2]chat.RoomView
	for i, n := range []*clusterNode{n1, n2} {
		v, _, err := n.hub.CreateRoom(ctx, ann, chat.NewRoom{Name: "Garden", Kind: db.KindPrivate, Members: []string{"Bob"}})
		if err != nil {
			t.Fatal(err)
		}
		garden[i] = v
	}
	if garden[0].ID != garden[1].ID {
		t.Fatalf("Garden is %d on n1 and %d on n2", garden[0].ID, garden[1].ID)
	}

	// Ann has a tab on each node; Bob's page, on n1, lists her once,
	// with her account and two devices.
	annHere, annThere, bobHere := n1.dialAs(t, "Ann"), n2.dialAs(t, "Ann"), n1.dialAs(t, "Bob")
	watcher := n1.dial(t, "nochat.v1", "?user=Watcher") // a guest's page on n1
	waitFrame(t, bobHere, "presence", "Ann once, with two devices", func(p presenceFrame) bool {
		var lines []string
		for _, q := range p.People {
			if q.User == "Ann" {
				lines = append(lines, q.User)
				if q.UserID == nil || *q.UserID != ann.UserID || q.Devices != 2 {
					return false
				}
			}
		}
		return len(lines) == 1 && p.Online == 4
	})

	// Ann types in Garden through n2: Bob, on n1, is told; her own tab on
	// n1 is not.
	annThere.send(map[string]any{"type": "typing", "data": map[string]any{"room": garden[0].ID}})
	waitFrame(t, bobHere, "typing", "Ann typing in Garden", func(d struct {
		User   string `json:"user"`
		UserID *int64 `json:"user_id"`
		Room   int64  `json:"room"`
	}) bool {
		return d.User == "Ann" && d.UserID != nil && *d.UserID == ann.UserID && d.Room == garden[0].ID
	})
	annHere.send(map[string]any{"type": "typing", "data": map[string]any{"room": garden[0].ID}}) // Bob hears this one
	waitFrame(t, bobHere, "typing", "Ann typing on n1", func(d struct{ User string }) bool { return d.User == "Ann" })

	// Bob, subscribed to pushes through n1, closes his n1 tab and chats
	// through n2: a mention of him is not pushed, however long after.
	now := time.Now()
	if err := n1.store.CreateSession(ctx, []byte("bob's"), db.Session{Kind: db.SessionAccount, AccountID: bob.UserID, Created: now, Expires: now.Add(time.Hour)}, 8); err != nil {
		t.Fatal(err)
	}
	sessions, err := n1.store.SessionsOf(ctx, bob.UserID, now)
	if err != nil || len(sessions) != 1 {
		t.Fatal(sessions, err)
	}
	if err := n1.store.SavePushSubscription(ctx, db.PushSubscription{SessionID: sessions[0].ID, AccountID: bob.UserID, Endpoint: "https://push.example/bob", P256dh: "k", Auth: "a", Created: now}, 10); err != nil {
		t.Fatal(err)
	}
	bobThere := n2.dialAs(t, "Bob")
	bobHere.conn.Close()
	waitFrame(t, watcher, "presence", "Bob on n2 alone", func(p presenceFrame) bool {
		return slices.ContainsFunc(p.People, func(q struct {
			User    string `json:"user"`
			UserID  *int64 `json:"user_id"`
			Devices int    `json:"devices"`
		}) bool {
			return q.User == "Bob" && q.Devices == 1
		}) && p.Online == 4
	})
	time.Sleep(2 * grace)
	if _, err := n1.hub.SendAs(ctx, ann, "", "@Bob the tomatoes are in", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pusher.got:
		t.Fatalf("n1 pushed %+v to Bob, who is chatting through n2", p)
	case <-time.After(time.Second):
	}

	// Once he has left n2 too, for longer than the grace, he is.
	bobThere.conn.Close()
	waitFrame(t, watcher, "presence", "Bob gone", func(p presenceFrame) bool { return p.Online == 3 })
	time.Sleep(2 * grace)
	if _, err := n1.hub.SendAs(ctx, ann, "", "@Bob the beans too", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pusher.got:
		if p.user != bob.UserID || p.n.Body != "@Bob the beans too" || !p.n.Urgent {
			t.Errorf("the push: %+v, want the mention, to Bob", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no push to Bob, away from every node")
	}

	// All along, Ann's own tab on n1 was never told she is typing.
	annHere.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		_, b, err := annHere.conn.ReadMessage()
		if err != nil {
			break // no more frames: read them all
		}
		if strings.Contains(string(b), `"type":"typing"`) {
			t.Fatalf("Ann's own tab on n1 was told she is typing: %s", b)
		}
	}
}

// On a cluster every node holds every push subscription, and the node a
// message is sent through pushes it, once: a phone subscribed through one
// node hears of a mention sent through another (with the first one down,
// too), and no node pushes a message another node took.
func TestTheNodeAMessageIsSentThroughPushesIt(t *testing.T) {
	ctx := context.Background()
	log := dbtest.NewLog(0)
	pushers := [2]*recordingPusher{{got: make(chan pushed, 16)}, {got: make(chan pushed, 16)}}
	var nodes [2]*room
	for i := range nodes {
		nodes[i] = newRoom(t, chat.Options{Stream: log, Pusher: pushers[i], PushGrace: time.Nanosecond, MsgRate: -1})
	}
	n1, n2 := nodes[0], nodes[1]
	ann, bob := accountIn(t, n1.store, "Ann", db.RoleMember), accountIn(t, n1.store, "Bob", db.RoleMember)
	// Bob's phone subscribes through n2.
	now := time.Now()
	if err := n2.store.CreateSession(ctx, []byte("bob's phone"), db.Session{Kind: db.SessionAccount, AccountID: bob.UserID, Created: now, Expires: now.Add(time.Hour)}, 8); err != nil {
		t.Fatal(err)
	}
	session, err := n2.store.SessionByToken(ctx, []byte("bob's phone"), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.store.SavePushSubscription(ctx, db.PushSubscription{SessionID: session.ID, AccountID: bob.UserID, Endpoint: "https://push.example/bob", P256dh: "k", Auth: "a", Created: now}, 10); err != nil {
		t.Fatal(err)
	}
	// pushedBy wants the one push of text, to Bob, from node i alone.
	pushedBy := func(i int, text string) {
		t.Helper()
		select {
		case p := <-pushers[i].got:
			if p.user != bob.UserID || p.n.Body != text {
				t.Errorf("n%d pushed %+v, want %q to Bob", i+1, p, text)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("n%d never pushed %q to Bob", i+1, text)
		}
		select {
		case p := <-pushers[1-i].got:
			t.Errorf("n%d pushed %+v too: the message was sent through n%d", 2-i, p, i+1)
		case <-time.After(500 * time.Millisecond):
		}
	}

	for i, n := range nodes {
		text := fmt.Sprintf("@Bob through n%d", i+1)
		if _, err := n.hub.SendAs(ctx, ann, "", text, ""); err != nil {
			t.Fatal(err)
		}
		pushedBy(i, text)
	}
	// n2, which Bob's phone subscribed through, stops: n1 still reaches it.
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n2.srv.Close()
	n2.hub.Close(closeCtx)
	if _, err := n1.hub.SendAs(ctx, ann, "", "@Bob with n2 down", ""); err != nil {
		t.Fatal(err)
	}
	pushedBy(0, "@Bob with n2 down")
}

// Two admins changing two settings of one room from pages loaded before
// either change (through one node, or through two nodes of a cluster at
// once) both keep their change: an edit writes only what it changes.
func TestTwoEditsOfARoomBothHold(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "one node", true: "two nodes"}[cluster], func(t *testing.T) {
			ctx := context.Background()
			var nodes [2]*room
			if cluster {
				log := dbtest.NewLog(0)
				for i := range nodes {
					nodes[i] = newRoom(t, chat.Options{Stream: log})
				}
			} else {
				nodes[0] = newRoom(t, chat.Options{})
				nodes[1] = nodes[0]
			}
			ann := accountIn(t, nodes[0].store, "Ann", db.RoleAdmin)
			v, _, err := nodes[0].hub.CreateRoom(ctx, ann, chat.NewRoom{Name: "Garden", Kind: db.KindOpen, Topic: "tomatoes"})
			if err != nil {
				t.Fatal(err)
			}
			var stale db.Room // as both pages read it, before either change
			for deadline := time.Now().Add(5 * time.Second); stale.ID == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the second node never had Garden")
				}
				stale, _ = nodes[1].hub.Room(v.ID)
			}
			name, topic, members := "Vegetable garden", "beans", db.PostMembers
			errs := make(chan error, 2)
			go func() {
				_, err := nodes[0].hub.ChangeRoom(ctx, ann, stale, chat.RoomChange{Name: &name})
				errs <- err
			}()
			go func() {
				_, err := nodes[1].hub.ChangeRoom(ctx, ann, stale, chat.RoomChange{Topic: &topic, Post: &members})
				errs <- err
			}()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			for i, n := range nodes {
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					got, _ := n.hub.Room(v.ID)
					rooms, err := n.store.Rooms(ctx)
					var stored db.Room
					for _, r := range rooms {
						if r.ID == v.ID {
							stored = r
						}
					}
					if got.Name == name && got.Topic == topic && got.Post == members && err == nil && stored == got {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("node %d's Garden: %+v, stored %+v (%v); want both changes", i+1, got, stored, err)
					}
				}
			}
		})
	}
}
