package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"nochat/db"
)

// In a cluster, an admin's dashboard on any node shows every node: each
// answers the dashboard's question with its connections, totals and
// errors, and carries out a disconnect asked of it (Peers.Ask). Accounts
// are the log's, so an account id in an answer names the same person on
// every node.

// The questions nodes ask each other.
const (
	AskDashboard  = "dashboard"
	AskDisconnect = "disconnect"
)

const (
	// maxNodeConnections bounds the connections one node lists in its
	// answer, oldest first; More says how many it left out.
	maxNodeConnections = 200
	// maxNodeErrors bounds the errors it lists, newest first.
	maxNodeErrors = 20
	// maxNodeText bounds a listed connection's address and browser, and
	// maxNodeRooms its rooms.
	maxNodeText  = 256
	maxNodeRooms = 64
)

// NodeView is another node of the cluster as this node's dashboard shows
// it.
type NodeView struct {
	Node string
	// Answered is false for a node this one hears (its presence) but
	// that did not answer the question in time: cut off, or dying.
	Answered bool
	nodeAnswer
	People []Person // Connections, by person
}

// nodeAnswer is a node's answer to the dashboard's question.
type nodeAnswer struct {
	Taken            time.Time
	Started          time.Time
	Online           int
	Peak             int
	MessagesLastHour int64
	ErrorsLastHour   int64
	Connections      []Connection // oldest first
	More             int          // connections not listed
	Errors           []db.ErrorEntry
}

// ErrNodeSilent is a node that did not answer in time.
var ErrNodeSilent = errors.New("the node did not answer")

// ErrNoCluster is a question for another node on a server that is not in
// a cluster.
var ErrNoCluster = errors.New("this server is not in a cluster")

// ErrUnknownNode is a question for a node this one does not hear (its
// presence): none of that name is in the cluster, or it has been silent
// for a while (down, or cut off).
var ErrUnknownNode = errors.New("no node of that name is heard in the cluster")

// Nodes asks the other nodes of the cluster for what the dashboard shows
// of them, and waits until every node this one hears has answered or ctx
// ends. It is nil on a single node.
func (h *Hub) Nodes(ctx context.Context) []NodeView {
	if h.opts.Peers == nil {
		return nil
	}
	var known []string
	h.b.read(func() { known = slices.Collect(maps.Keys(h.b.peers)) })
	answers := h.opts.Peers.Ask(ctx, "", AskDashboard, nil, known)
	for node := range answers {
		if !slices.Contains(known, node) {
			known = append(known, node)
		}
	}
	slices.Sort(known)
	views := make([]NodeView, 0, len(known))
	for _, node := range known {
		v := NodeView{Node: node}
		if doc, ok := answers[node]; ok && json.Unmarshal(doc, &v.nodeAnswer) == nil {
			v.Answered = true
			v.bound() // as this code sends it, whatever came
			v.People = byPerson(v.Connections)
		}
		views = append(views, v)
	}
	return views
}

// disconnectQuestion asks a node to disconnect one of its sessions.
type disconnectQuestion struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// disconnectAnswer is what it did: the connection it closed, or why not.
type disconnectAnswer struct {
	Connection Connection `json:"connection"`
	Error      string     `json:"error,omitempty"`
}

// DisconnectOn closes session id on a node of the cluster, as Disconnect
// does on this one (which it is when node is this node's name), and
// returns the connection it closed. It is ErrNoSession when the node has
// no such session, ErrUnknownNode for a node this one does not hear (it
// is not asked), ErrNodeSilent when the node did not answer before ctx
// ended (it may still have closed it), ErrNoCluster on a single node.
func (h *Hub) DisconnectOn(ctx context.Context, node, id, reason string) (Connection, error) {
	if h.opts.Peers == nil {
		return Connection{}, fmt.Errorf("disconnect on %q: %w", node, ErrNoCluster)
	}
	if node == h.opts.Peers.Name() {
		return h.Disconnect(id, reason)
	}
	var known bool
	h.b.read(func() { _, known = h.b.peers[node] })
	if !known {
		return Connection{}, fmt.Errorf("disconnect on %q: %w", node, ErrUnknownNode)
	}
	q, err := json.Marshal(disconnectQuestion{ID: id, Reason: reason})
	if err != nil {
		return Connection{}, err
	}
	doc, ok := h.opts.Peers.Ask(ctx, node, AskDisconnect, q, []string{node})[node]
	if !ok {
		return Connection{}, fmt.Errorf("disconnect on %q: %w", node, ErrNodeSilent)
	}
	var a disconnectAnswer
	if err := json.Unmarshal(doc, &a); err != nil {
		return Connection{}, fmt.Errorf("disconnect on %q: %w", node, err)
	}
	if a.Error != "" {
		return Connection{}, fmt.Errorf("disconnect %q on %q: %w", id, node, ErrNoSession)
	}
	return a.Connection, nil
}

// answerPeer answers another node's question.
func (h *Hub) answerPeer(kind string, doc []byte) []byte {
	var a any
	switch kind {
	case AskDashboard:
		a = h.nodeAnswer()
	case AskDisconnect:
		var q disconnectQuestion
		if json.Unmarshal(doc, &q) != nil || q.ID == "" {
			return nil // not a question this code asks
		}
		reason := Cut(q.Reason, 120)
		c, err := h.Disconnect(q.ID, reason)
		answer := disconnectAnswer{Connection: c}
		if err != nil {
			answer.Error = err.Error()
		}
		a = answer
	default:
		return nil
	}
	out, err := json.Marshal(a)
	if err != nil {
		return nil
	}
	return out
}

// nodeAnswer is this node's answer to the dashboard's question.
func (h *Hub) nodeAnswer() nodeAnswer {
	s := h.Snapshot(maxNodeErrors)
	a := nodeAnswer{
		Taken:            s.Taken,
		Started:          s.Started,
		Online:           s.Online,
		Peak:             s.Peak,
		MessagesLastHour: Sum(s.Series.Messages, 60),
		ErrorsLastHour:   Sum(s.Series.Errors, 60),
		Connections:      s.Connections,
		Errors:           s.Errors,
	}
	a.bound()
	return a
}

// bound keeps an answer within the limits above: the oldest connections
// (More counts the rest), the newest errors, and each connection's text
// cut. A browser's name is as long as it says (net/http takes headers up
// to 1 MB): uncut, a client could make its node's answer too big to send,
// and the node look silent to the others.
func (a *nodeAnswer) bound() {
	if len(a.Connections) > maxNodeConnections {
		a.More += len(a.Connections) - maxNodeConnections
		a.Connections = a.Connections[:maxNodeConnections]
	}
	a.Errors = a.Errors[:min(len(a.Errors), maxNodeErrors)]
	for i := range a.Connections {
		c := &a.Connections[i]
		c.UserAgent = Cut(c.UserAgent, maxNodeText)
		c.Remote = Cut(c.Remote, maxNodeText)
		c.Rooms = c.Rooms[:min(len(c.Rooms), maxNodeRooms)]
	}
}
