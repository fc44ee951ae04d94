package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
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

// sharedPresence is a node's presence as it tells the others: its people,
// an account by its id (the log's accounts have one id on every node).
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
	// opPeerTyping: someone on another node is typing in a room.
	opPeerTyping struct{ t typingData }
)

func (opPeerPresence) isOp() {}
func (opPresenceBeat) isOp() {}
func (opPeerTyping) isOp()   {}

// shareTyping tells the other nodes that someone here is typing in a
// room.
func (b *broadcaster) shareTyping(t typingData) {
	if b.h.opts.Peers == nil {
		return
	}
	if doc, err := json.Marshal(t); err == nil {
		b.h.opts.Peers.Share(PeerTyping, doc)
	}
}

// peerTyping tells this node's clients who see the room that someone on
// another node is typing there; not the typist's own tabs here, as
// typing does.
func (b *broadcaster) peerTyping(t typingData) {
	frame := encode("typing", t)
	for c := range b.recipients(toRoomV1, t.Room, nil) {
		if t.UserID != nil && c.userID == *t.UserID {
			continue
		}
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
			if json.Unmarshal(data, &t) != nil || t.Room <= 0 || t.UserID != nil && *t.UserID <= 0 || len(t.User) > 4*h.opts.MaxNameLen {
				return
			}
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
	doc, err := json.Marshal(sharedPresence{Online: online, People: people})
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
	b.peersChanged()
}

// peersChanged tells presence, and the away clock, that the people on
// the other nodes changed: a person online on any node is not away, and
// is pushed to only once they have been gone from every node for the
// grace.
func (b *broadcaster) peersChanged() {
	b.presenceChanged()
	online := make(map[int64]bool)
	for _, p := range b.peers {
		for _, q := range p.People {
			if q.UserID != nil {
				online[*q.UserID] = true
			}
		}
	}
	b.h.away.elsewhere(online, time.Now(), b.h.opts.PushGrace)
}

// presenceBeat tells the others this node's presence, and forgets nodes
// not heard from in peerPresenceTTL.
func (b *broadcaster) presenceBeat() {
	b.sharePresence(presencePeople(b.conns), len(b.conns), true)
	for node, p := range b.peers {
		if time.Since(p.at) > peerPresenceTTL {
			delete(b.peers, node)
			b.peersChanged()
		}
	}
}

// withPeers adds the other nodes' people to this node's: a person with
// tabs on several nodes (by account), or a guest name on several, is one
// line with their devices added up. A node of a version from before
// accounts were shared tells no ids: its people go by name, as they did.
func (b *broadcaster) withPeers(people []presencePerson, online int) ([]presencePerson, int) {
	if len(b.peers) == 0 {
		return people, online
	}
	at := make(map[presenceKey]int, len(people))
	key := func(p presencePerson) presenceKey {
		if p.UserID != nil {
			return presenceKey{userID: *p.UserID}
		}
		return presenceKey{guest: p.User, byName: !p.Guest}
	}
	for i, p := range people {
		at[key(p)] = i
	}
	for _, node := range slices.Sorted(maps.Keys(b.peers)) {
		p := b.peers[node]
		online += p.Online
		for _, q := range p.People {
			k := key(q)
			if i, ok := at[k]; ok {
				people[i].Devices += q.Devices
				continue
			}
			at[k] = len(people)
			people = append(people, q)
		}
	}
	slices.SortStableFunc(people, byName)
	return people, online
}
