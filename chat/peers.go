package chat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"nochat/db"
)

// Peers carries what the nodes of a cluster tell each other outside the
// log (package cluster): who is connected to each, and who is typing.
// Both are ephemeral: not stored, and a node's people drop out of the
// others' presence when it stops telling them (it died, or was cut off).
type Peers interface {
	// Share sends a JSON document of a kind (PeerPresence, PeerTyping)
	// to the other nodes.
	Share(kind string, doc []byte)
	// Listen hands fn each document the other nodes share, with the
	// sending node's name and the document's kind, until this node
	// leaves the cluster.
	Listen(fn func(node, kind string, doc []byte))
	// Ask sends a question of a kind to every other node (to == "") or
	// to one, and returns the answers by node: every one heard until each
	// node named in expect has answered or ctx ends; with expect empty, at
	// once.
	Ask(ctx context.Context, to, kind string, doc []byte, expect []string) map[string][]byte
	// Answer has fn answer the other nodes' questions (nil: none) until
	// this node leaves the cluster.
	Answer(fn func(kind string, doc []byte) []byte)
	// Name is this node's name in the cluster.
	Name() string
}

// The kinds of document nodes share.
const (
	PeerPresence = "presence"
	PeerTyping   = "typing"
)

const (
	// sharePresenceEvery is how often a node tells the others its
	// presence although it did not change: a heartbeat.
	sharePresenceEvery = 5 * time.Second
	// peerPresenceTTL is how long another node's presence counts after it
	// was last heard: three heartbeats.
	peerPresenceTTL = 3 * sharePresenceEvery
	// maxPeerPeople bounds one node's presence as another node takes it.
	maxPeerPeople = 10000
)

// sharedPresence is a node's presence as it tells the others: its people
// with no account ids, which name other people on other nodes.
type sharedPresence struct {
	Online int              `json:"online"`
	People []presencePerson `json:"people"`
}

// peerPresence is another node's presence as last heard.
type peerPresence struct {
	sharedPresence
	at time.Time
}

type (
	// opPeerPresence: another node told its presence.
	opPeerPresence struct {
		node string
		p    sharedPresence
	}
	// opPresenceBeat: time to tell the others again, and to forget the
	// nodes not heard from.
	opPresenceBeat struct{}
	// opPeerTyping: someone on another node is typing in the main room.
	opPeerTyping struct{ t typingData }
)

func (opPeerPresence) isOp() {}
func (opPresenceBeat) isOp() {}
func (opPeerTyping) isOp()   {}

// shareTyping tells the other nodes that someone here is typing in the
// main room, the one room the nodes share so far.
func (b *broadcaster) shareTyping(t typingData) {
	if b.h.opts.Peers == nil || t.Room != db.DefaultRoom {
		return
	}
	t.UserID = nil
	if doc, err := json.Marshal(t); err == nil {
		b.h.opts.Peers.Share(PeerTyping, doc)
	}
}

// peerTyping tells this node's clients in the main room that someone on
// another node is typing.
func (b *broadcaster) peerTyping(t typingData) {
	frame := encode("typing", t)
	for c := range b.recipients(toRoomV1, t.Room, nil) {
		c.write(frame, c.melodyLimit) // none when it would wait: it is stale soon
	}
}

// listenToPeers starts hearing the other nodes' presence and telling them
// this node's, until the hub closes.
func (h *Hub) listenToPeers() {
	h.opts.Peers.Listen(func(node, kind string, data []byte) {
		switch kind {
		case PeerPresence:
			var p sharedPresence
			if json.Unmarshal(data, &p) != nil || len(p.People) > maxPeerPeople || p.Online < 0 {
				return // not a presence this code sent
			}
			h.b.send(opPeerPresence{node: node, p: p})
		case PeerTyping:
			var t typingData
			if json.Unmarshal(data, &t) != nil || t.Room != db.DefaultRoom || len(t.User) > 4*h.opts.MaxNameLen {
				return
			}
			t.UserID = nil // an account's id names someone else here
			h.b.send(opPeerTyping{t})
		}
	})
	go func() {
		t := time.NewTicker(sharePresenceEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				h.b.send(opPresenceBeat{})
			case <-h.ctx.Done():
				return
			}
		}
	}()
}

// sharePresence tells the other nodes this node's presence if it changed
// since it last did, or always when beat.
func (b *broadcaster) sharePresence(people []presencePerson, online int, beat bool) {
	shared := sharedPresence{Online: online, People: make([]presencePerson, len(people))}
	for i, p := range people {
		p.UserID = nil
		shared.People[i] = p
	}
	doc, err := json.Marshal(shared)
	if err != nil || (!beat && bytes.Equal(doc, b.sharedPresence)) {
		return
	}
	b.sharedPresence = doc
	b.h.opts.Peers.Share(PeerPresence, doc)
}

// heardPeer takes another node's presence.
func (b *broadcaster) heardPeer(node string, p sharedPresence) {
	if b.peers == nil {
		b.peers = make(map[string]peerPresence)
	}
	b.peers[node] = peerPresence{sharedPresence: p, at: time.Now()}
	b.presenceChanged()
}

// presenceBeat tells the others this node's presence, and forgets nodes
// not heard from in peerPresenceTTL.
func (b *broadcaster) presenceBeat() {
	b.sharePresence(presencePeople(b.conns), len(b.conns), true)
	for node, p := range b.peers {
		if time.Since(p.at) > peerPresenceTTL {
			delete(b.peers, node)
			b.presenceChanged()
		}
	}
}

// withPeers adds the other nodes' people to this node's: a name on
// several nodes (a guest's, or a person's tabs on two nodes) is one line
// with their devices added up. Other nodes' people carry no account id.
func (b *broadcaster) withPeers(people []presencePerson, online int) ([]presencePerson, int) {
	if len(b.peers) == 0 {
		return people, online
	}
	type key struct {
		user  string
		guest bool
	}
	at := make(map[key]int, len(people))
	for i, p := range people {
		if p.UserID == nil {
			at[key{p.User, p.Guest}] = i
		}
	}
	for _, node := range slices.Sorted(maps.Keys(b.peers)) {
		p := b.peers[node]
		online += p.Online
		for _, q := range p.People {
			q.UserID = nil
			k := key{q.User, q.Guest}
			if i, ok := at[k]; ok {
				people[i].Devices += q.Devices
				continue
			}
			at[k] = len(people)
			people = append(people, q)
		}
	}
	slices.SortStableFunc(people, func(a, b presencePerson) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.User), strings.ToLower(b.User)), strings.Compare(a.User, b.User))
	})
	return people, online
}
