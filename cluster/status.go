package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Status is the cluster's stream as one node sees it.
type Status struct {
	Stream   string
	Entries  uint64 // entries in the stream
	LastSeq  uint64 // the last entry's sequence
	Replicas int    // how many nodes hold each entry
	Nodes    []NodeStatus
}

// NodeStatus is one replica of the stream.
type NodeStatus struct {
	Name    string
	Leader  bool          // takes the writes and orders them
	Current bool          // up to date with the leader
	Offline bool          // not seen recently
	Lag     uint64        // entries behind the leader
	Seen    time.Duration // since the leader last heard from it
}

// Status reads the stream's state through this node's connection.
func (n *Node) Status(ctx context.Context) (Status, error) {
	return status(ctx, n.js)
}

// ReadStatus is the status of the running node whose JetStream directory
// is dir: it connects to that node's client listener, as the node wrote it
// down in dir.
func ReadStatus(ctx context.Context, dir string) (Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, clientURLFile))
	if err != nil {
		return Status{}, fmt.Errorf("no cluster node has run with %s (%w): give its -cluster-dir, or its -db", dir, err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(b)), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return Status{}, fmt.Errorf("the node is not running, or not reachable: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Status{}, err
	}
	return status(ctx, js)
}

func status(ctx context.Context, js jetstream.JetStream) (Status, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return Status{}, fmt.Errorf("the cluster's stream: %w", err)
	}
	info := s.CachedInfo()
	st := Status{Stream: StreamName, Entries: info.State.Msgs, LastSeq: info.State.LastSeq, Replicas: info.Config.Replicas}
	if c := info.Cluster; c != nil {
		if c.Leader != "" {
			st.Nodes = append(st.Nodes, NodeStatus{Name: c.Leader, Leader: true, Current: true})
		}
		for _, p := range c.Replicas {
			st.Nodes = append(st.Nodes, NodeStatus{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Seen: p.Active})
		}
	}
	return st, nil
}
