package chat_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

// peerNet carries chat.Peers between hubs in one process, as package
// cluster does over NATS between processes. A silent node hears the
// others but answers no question, as a node cut off or dying.
type peerNet struct {
	mu     sync.Mutex
	listen map[string]func(node, kind string, doc []byte)
	answer map[string]func(kind string, doc []byte) []byte
	silent map[string]bool
	asked  map[string]int // questions each node was sent
}

func newPeerNet() *peerNet {
	return &peerNet{
		listen: map[string]func(node, kind string, doc []byte){},
		answer: map[string]func(kind string, doc []byte) []byte{},
		silent: map[string]bool{},
		asked:  map[string]int{},
	}
}

func (n *peerNet) setSilent(node string, on bool) {
	n.mu.Lock()
	n.silent[node] = on
	n.mu.Unlock()
}

func (n *peerNet) askedOf(node string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.asked[node]
}

type netPeer struct {
	net  *peerNet
	name string
}

func (p netPeer) Name() string { return p.name }

func (p netPeer) Share(kind string, doc []byte) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	for node, fn := range p.net.listen {
		if node != p.name {
			go fn(p.name, kind, doc) // never into the sharer's own loop
		}
	}
}

func (p netPeer) Listen(fn func(node, kind string, doc []byte)) {
	p.net.mu.Lock()
	p.net.listen[p.name] = fn
	p.net.mu.Unlock()
}

func (p netPeer) Answer(fn func(kind string, doc []byte) []byte) {
	p.net.mu.Lock()
	p.net.answer[p.name] = fn
	p.net.mu.Unlock()
}

func (p netPeer) Ask(ctx context.Context, to, kind string, doc []byte, expect []string) map[string][]byte {
	if len(expect) == 0 {
		return nil // as package cluster's: nobody to wait for, nothing asked
	}
	p.net.mu.Lock()
	var ask []string
	for node := range p.net.answer {
		if node != p.name && (to == "" || node == to) {
			p.net.asked[node]++
			if !p.net.silent[node] {
				ask = append(ask, node)
			}
		}
	}
	p.net.mu.Unlock()
	answers := map[string][]byte{}
	for _, node := range ask {
		p.net.mu.Lock()
		fn := p.net.answer[node]
		p.net.mu.Unlock()
		if a := fn(kind, doc); a != nil {
			answers[node] = a
		}
	}
	if slices.ContainsFunc(expect, func(node string) bool { _, ok := answers[node]; return !ok }) {
		<-ctx.Done() // someone expected is silent: wait, as over a network
	}
	return answers
}

// An admin's disconnect on a node of the cluster: on this node's own name
// it is this node's; a node this one does not hear is refused at once,
// without a question; a silent node is ErrNodeSilent, its session left
// as it was; a node that answers closes the session and names it.
func TestDisconnectOnANodeOfTheCluster(t *testing.T) {
	net := newPeerNet()
	n1 := newRoom(t, chat.Options{Peers: netPeer{net, "n1"}})
	n2 := newRoom(t, chat.Options{Peers: netPeer{net, "n2"}})
	here := n1.dial(t, "nochat.v1", "?user=ann")
	there := n2.dial(t, "nochat.v1", "?user=bob")

	// n1 hears n2 once n2 has told its presence (bob connecting).
	deadline := time.Now().Add(10 * time.Second)
	for {
		views := n1.hub.Nodes(t.Context())
		if len(views) == 1 && views[0].Node == "n2" && views[0].Answered && len(views[0].Connections) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1's dashboard never showed n2 with bob's connection: %+v", views)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ask := func(node, id string) (chat.Connection, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		return n1.hub.DisconnectOn(ctx, node, id, "disconnected by an admin")
	}
	asked := net.askedOf("n2")

	// A node nobody hears: refused at once, nobody asked.
	began := time.Now()
	if _, err := ask("n9", there.hello.Session); !errors.Is(err, chat.ErrUnknownNode) {
		t.Errorf("disconnect on n9: %v, want ErrUnknownNode", err)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Errorf("disconnect on an unknown node took %v: it waited for an answer", took)
	}

	// A silent node: ErrNodeSilent, and bob still connected.
	net.setSilent("n2", true)
	if _, err := ask("n2", there.hello.Session); !errors.Is(err, chat.ErrNodeSilent) {
		t.Errorf("disconnect on silent n2: %v, want ErrNodeSilent", err)
	}
	net.setSilent("n2", false)
	if got := len(n2.hub.Snapshot(0).Connections); got != 1 {
		t.Fatalf("n2 has %d connections after a question it did not answer, want bob's", got)
	}

	// No such session on n2.
	if _, err := ask("n2", "0123456789abcdef0123456789abcdef"); !errors.Is(err, chat.ErrNoSession) {
		t.Errorf("disconnect of a session n2 does not have: %v, want ErrNoSession", err)
	}

	// n2 answers: bob's socket is closed and named.
	c, err := ask("n2", there.hello.Session)
	if err != nil {
		t.Fatalf("disconnect on n2: %v", err)
	}
	if c.ID != there.hello.Session || c.User != "bob" {
		t.Errorf("disconnect on n2 closed %+v, want bob's session %s", c, there.hello.Session)
	}
	there.expectClose(websocket.ClosePolicyViolation)
	if got := net.askedOf("n2") - asked; got != 3 {
		t.Errorf("n2 was asked %d times, want 3 (silent, no session, bob)", got)
	}

	// This node's own name: its own session, no question sent.
	asked = net.askedOf("n2")
	c, err = ask("n1", here.hello.Session)
	if err != nil || c.User != "ann" {
		t.Fatalf("disconnect on n1 (this node): %+v, %v; want ann's session", c, err)
	}
	here.expectClose(websocket.ClosePolicyViolation)
	if got := net.askedOf("n2") - asked; got != 0 {
		t.Errorf("a disconnect on this node asked n2 %d times", got)
	}
}
