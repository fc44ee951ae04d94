package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"nochat/cluster/clustertest"
	"nochat/db"
)

// Three nodes on loopback, each an embedded NATS server with its own
// JetStream directory and its own SQLite file, as three Pis would be.

const testSecret = "a-secret-of-the-test-cluster"

// node is one member of a test cluster: its NATS node, its projection and
// the writer between them.
type node struct {
	cfg     Config
	n       *Node
	store   *db.Store
	w       *db.ReplicatedWriter[string]
	commits chan db.Commit[string]
}

func configs(t testing.TB, routes []string) []Config {
	var cfgs []Config
	for i, addr := range routes {
		peers := slices.Delete(slices.Clone(routes), i, i+1)
		cfgs = append(cfgs, Config{
			Listen: addr, Peers: peers, Node: fmt.Sprintf("n%d", i+1), Secret: testSecret,
			Dir: filepath.Join(t.TempDir(), "jetstream"), Replicas: 3, MaxEntry: 1 << 20,
		})
	}
	return cfgs
}

// startAll starts the nodes together, as a cluster's first start does:
// each waits for a quorum.
func startAll(t testing.TB, cfgs []Config) []*node {
	t.Helper()
	nodes := make([]*node, len(cfgs))
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	for i, c := range cfgs {
		wg.Go(func() {
			nodes[i], errs[i] = startNode(t, c, filepath.Join(t.TempDir(), "nochat.db"))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

func startNode(t testing.TB, c Config, dbPath string) (*node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, c)
	if err != nil {
		return nil, err
	}
	store, err := db.Open(context.Background(), dbPath, db.Options{})
	if err != nil {
		n.Close()
		return nil, err
	}
	nd := &node{cfg: c, n: n, store: store, commits: make(chan db.Commit[string], 1024)}
	nd.w, err = db.NewReplicatedWriter(store, n, 0, func(cm db.Commit[string]) { nd.commits <- cm })
	if err != nil {
		return nil, err
	}
	t.Cleanup(nd.stop)
	return nd, nil
}

func (nd *node) stop() {
	if nd.w != nil {
		nd.w.Close()
		nd.w = nil
	}
	if nd.n != nil {
		nd.n.Close()
		nd.n = nil
	}
	if nd.store != nil {
		nd.store.Close()
		nd.store = nil
	}
}

// send appends d tagged tag and waits for the commit that answers it.
func (nd *node) send(t *testing.T, d db.Draft, tag string) db.Item[string] {
	t.Helper()
	if err := nd.w.Append(context.Background(), d, tag); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case c := <-nd.commits:
			for _, it := range c.Items {
				if it.Tag == tag {
					if c.Err != nil {
						return db.Item[string]{Stored: db.Stored{Refused: c.Err}, Tag: tag}
					}
					return it
				}
			}
		case <-deadline:
			t.Fatalf("%s: no commit for %q", nd.cfg.Node, tag)
		}
	}
}

// caughtUp waits until every node has applied the stream up to seq.
func caughtUp(t *testing.T, nodes []*node, seq int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, nd := range nodes {
		for nd.w.Applied() < seq {
			if time.Now().After(deadline) {
				t.Fatalf("%s applied up to %d, not %d", nd.cfg.Node, nd.w.Applied(), seq)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// history is a node's whole log as a user would read it, one line each.
func history(t *testing.T, nd *node) []string {
	t.Helper()
	entries, err := nd.store.LogAfter(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		if e.Change != nil {
			lines = append(lines, fmt.Sprintf("%d %s on %d %q at %d", e.Change.ID, e.Change.Kind, e.Change.Message, e.Change.Text+e.Change.Emoji, e.Change.Timestamp))
			continue
		}
		m := e.Message
		lines = append(lines, fmt.Sprintf("%d %s: %q at %d edited %v", m.ID, m.User, m.Message, m.Timestamp, m.EditedAt != nil))
	}
	return lines
}

func TestThreeNodesKeepOneHistory(t *testing.T) {
	nodes := startAll(t, configs(t, clustertest.LoopbackPorts(t, 3)))
	a, b, c := nodes[0], nodes[1], nodes[2]

	first := a.send(t, db.Draft{User: "ann", Message: "hello from one", CID: "c1"}, "a1")
	if first.Message.ID == 0 || first.Refused != nil || first.Duplicate {
		t.Fatalf("first send: %+v", first.Stored)
	}
	second := b.send(t, db.Draft{User: "bob", Message: "hello from two", CID: "c1"}, "b1")
	if second.Message.ID <= first.Message.ID {
		t.Fatalf("a later send took id %d, after %d", second.Message.ID, first.Message.ID)
	}
	// The same sender and cid again, through another node: the same
	// message, not a second one.
	again := c.send(t, db.Draft{User: "ann", Message: "hello from one", CID: "c1"}, "c1")
	if !again.Duplicate || again.Message.ID != first.Message.ID {
		t.Fatalf("a re-send through another node: %+v, want a duplicate of %d", again.Stored, first.Message.ID)
	}
	del := c.send(t, db.Draft{User: "cy", Change: db.Delete, Target: second.Message.ID, Moderator: true}, "c2")
	if del.Change == nil {
		t.Fatalf("a moderator's deletion through the third node: %+v", del.Stored)
	}
	// An account made through one node posts through another, under the
	// same id everywhere.
	dee, err := b.store.CreateAccount(context.Background(), db.Account{Name: "Dee", NameKey: "dee", PasswordHash: "h", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, nodes, b.w.Applied()) // as a session through c would be
	signed := c.send(t, db.Draft{User: "Dee", UserID: dee.ID, Message: "signed in", CID: "d1"}, "c3")
	if signed.Refused != nil || signed.Message.UserID == nil || *signed.Message.UserID != dee.ID {
		t.Fatalf("a post from an account made on another node: %+v", signed.Stored)
	}
	// Rooms are each node's own so far, and the log makes every account
	// that posts: a draft naming another room, or an account the log did
	// not make, is refused, not stored under another node's room or person.
	for name, d := range map[string]db.Draft{
		"from an account the log did not make": {User: "ann", UserID: 1, Message: "signed in"},
		"in another room":                      {User: "ann", Room: 2, Message: "elsewhere"},
	} {
		if err := a.w.Append(context.Background(), d, "no"); !errors.Is(err, db.ErrNotReplicated) {
			t.Errorf("a draft %s: %v, want ErrNotReplicated", name, err)
		}
	}
	last := a.send(t, db.Draft{User: "ann", Message: "still here"}, "a2")
	caughtUp(t, nodes, last.Message.ID)

	want := history(t, a)
	if len(want) != 4 {
		t.Fatalf("history: %q, want the first message, the deletion of the second, Dee's, the last", want)
	}
	for _, nd := range nodes[1:] {
		if got := history(t, nd); !slices.Equal(got, want) {
			t.Errorf("%s's history:\n%q\nwant %s's:\n%q", nd.cfg.Node, got, a.cfg.Node, want)
		}
	}
}

func TestANodeRestartsAndCatchesUp(t *testing.T) {
	cfgs := configs(t, clustertest.LoopbackPorts(t, 3))
	nodes := startAll(t, cfgs)
	a, c := nodes[0], nodes[2]
	path := filepath.Join(t.TempDir(), "c.db")
	c.stop()
	var last db.Item[string]
	for i := range 20 {
		last = a.send(t, db.Draft{User: "ann", Message: fmt.Sprintf("while three was down %d", i)}, fmt.Sprint("a", i))
	}
	// Back, with an empty database: it builds its projection from the
	// stream.
	c, err := startNode(t, cfgs[2], path)
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, []*node{a, c}, last.Message.ID)
	if got, want := history(t, c), history(t, a); !slices.Equal(got, want) {
		t.Errorf("the restarted node's history:\n%q\nwant:\n%q", got, want)
	}
}

func TestANodeAloneRefusesToConfirm(t *testing.T) {
	nodes := startAll(t, configs(t, clustertest.LoopbackPorts(t, 3)))
	a := nodes[0]
	a.send(t, db.Draft{User: "ann", Message: "before"}, "a0")
	nodes[1].stop()
	nodes[2].stop()
	got := a.send(t, db.Draft{User: "ann", Message: "alone"}, "a1")
	if !errors.Is(got.Refused, db.ErrUnavailable) {
		t.Fatalf("a send with two of three nodes down: %+v, want ErrUnavailable", got.Stored)
	}
}

func TestConfigRefusals(t *testing.T) {
	ok := Config{Listen: "127.0.0.1:6222", Peers: []string{"10.0.0.2:6222", "10.0.0.3:6222"}, Node: "pi1", Secret: testSecret, Replicas: 3}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"one replica":     {Node: "pi1", Listen: ok.Listen, Peers: ok.Peers, Secret: testSecret, Replicas: 1},
		"two replicas":    {Node: "pi1", Listen: ok.Listen, Peers: ok.Peers, Secret: testSecret, Replicas: 2},
		"too few nodes":   {Node: "pi1", Listen: ok.Listen, Peers: ok.Peers[:1], Secret: testSecret, Replicas: 3},
		"no secret":       {Node: "pi1", Listen: ok.Listen, Peers: ok.Peers, Replicas: 3},
		"short secret":    {Node: "pi1", Listen: ok.Listen, Peers: ok.Peers, Secret: "short", Replicas: 3},
		"no peers":        {Node: "pi1", Listen: ok.Listen, Secret: testSecret, Replicas: 3},
		"bad listen":      {Node: "pi1", Listen: "6222", Peers: ok.Peers, Secret: testSecret, Replicas: 3},
		"bad peer":        {Node: "pi1", Listen: ok.Listen, Peers: []string{"nohost"}, Secret: testSecret, Replicas: 3},
		"external, R1":    {Node: "pi1", URL: "nats://127.0.0.1:4222", Replicas: 1},
		"nothing at all":  {},
		"peers no listen": {Peers: ok.Peers, Node: "pi1", Secret: testSecret, Replicas: 3},
		"dotted name":     {Listen: ok.Listen, Peers: ok.Peers, Node: "pi1.local", Secret: testSecret, Replicas: 3},
		"no name":         {Listen: ok.Listen, Peers: ok.Peers, Secret: testSecret, Replicas: 3},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("%s: taken", name)
		}
	}
}

// Only nodes that know the secret join: a machine on the network with
// another secret (or none) gets no route, so no copy of the chat, and no
// client of the node's NATS gets in without it either.
func TestAStrangerCannotJoin(t *testing.T) {
	routes := clustertest.LoopbackPorts(t, 4)
	cfgs := configs(t, routes[:3])
	nodes := startAll(t, cfgs)
	nodes[0].send(t, db.Draft{User: "ann", Message: "members only"}, "a1")

	stranger := Config{Listen: routes[3], Peers: routes[:3], Node: "stranger", Secret: "not-the-cluster-secret", Dir: filepath.Join(t.TempDir(), "js"), Replicas: 3, MaxEntry: 1 << 20}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := Start(ctx, stranger); err == nil {
		n.Close()
		t.Fatal("a node with another secret joined the cluster")
	}

	b, err := os.ReadFile(filepath.Join(cfgs[0].Dir, clientURLFile))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect("nats://"+u.Host, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a NATS client without the secret connected to a node")
	}
	if info, err := os.Stat(filepath.Join(cfgs[0].Dir, clientURLFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the client URL file, which holds the secret: %v, %v; want mode 0600", info.Mode(), err)
	}
}

// An external NATS server that takes smaller messages than a message with
// its largest file is refused at start, saying what to change, rather
// than found out at each send of a picture.
func TestAnExternalServerTooSmallForFilesIsRefused(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, MaxPayload: 1 << 20, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{Node: "pi1", URL: srv.ClientURL(), Replicas: 3, MaxEntry: 16 << 20})
	if err == nil {
		n.Close()
		t.Fatal("a server that takes 1 MB messages was taken for 16 MB entries")
	}
	if !strings.Contains(err.Error(), "max_payload") || !strings.Contains(err.Error(), "-max-upload") {
		t.Errorf("the refusal: %v; want it to name max_payload and -max-upload", err)
	}
}
