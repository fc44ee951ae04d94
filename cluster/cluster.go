// Package cluster lets several NoChat nodes serve one chat: the ordered log
// (db.Stream) is a NATS JetStream stream, replicated to a quorum of nodes
// and written to disk before it is acknowledged, and every node applies it
// in order to its own SQLite (db.ReplicatedWriter).
//
// A node runs NATS in its own process (embedded mode: the appliance stays
// one binary per node), its route listener clustered with the other
// nodes', or joins an existing NATS cluster (external mode).
package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"nochat/db"
)

// The stream every node publishes to and applies from.
const (
	StreamName = "NOCHAT"
	subject    = "nochat.log"
	user       = "nochat" // the one NATS user, for routes and clients alike
)

// MinSecret is the shortest cluster secret taken: it is all that keeps
// another machine on the network from joining the cluster.
const MinSecret = 16

// Config is how a node joins its cluster.
type Config struct {
	// Embedded mode: this node's route listener, the others', the
	// cluster's name and this node's.
	Listen    string
	Advertise string // where the others reach Listen, if not there
	Peers     []string
	Name      string
	Node      string
	// Secret authenticates routes and clients; at least MinSecret bytes.
	Secret string
	// Dir holds JetStream's files (embedded mode).
	Dir string
	// ClientListen is where the embedded server takes NATS clients
	// (`nochat cluster status`); host:port, port 0 for any.
	ClientListen string

	// External mode: an existing NATS cluster's URLs, and a credentials
	// file for it ("" for none). Listen, Peers and Dir are then unused.
	URL   string
	Creds string

	Replicas int   // how many nodes hold each entry
	MaxEntry int32 // the largest entry, in bytes (a message with its file)

	Log *slog.Logger
}

// Check reports what is wrong with c before anything starts, as a person
// reading the error at the command line needs it.
func (c Config) Check() error {
	if c.URL == "" {
		if c.Listen == "" || len(c.Peers) == 0 {
			return errors.New("-cluster-listen and -cluster-peers go together: this node's route address and the others'")
		}
		if len(c.Secret) < MinSecret {
			return fmt.Errorf("a cluster needs a secret of at least %d characters shared by its nodes (NOCHAT_CLUSTER_SECRET or -cluster-secret-file): without it any machine on the network could join", MinSecret)
		}
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("-cluster-listen %q: %w", c.Listen, err)
		}
		for _, p := range c.Peers {
			if _, _, err := net.SplitHostPort(p); err != nil {
				return fmt.Errorf("-cluster-peers %q: %w", p, err)
			}
		}
	}
	if !validName(c.Node) {
		return fmt.Errorf("-node-name %q: use letters, digits, - and _ (it names the node in NATS subjects)", c.Node)
	}
	if c.Replicas < 3 {
		return fmt.Errorf("-replicas %d: a write needs a majority of the replicas, so fewer than 3 cannot survive losing a node; use 3 (or 5)", c.Replicas)
	}
	if c.URL == "" && c.Replicas > len(c.Peers)+1 {
		return fmt.Errorf("-replicas %d, but the cluster has %d nodes (this one and -cluster-peers): name every node in -cluster-peers", c.Replicas, len(c.Peers)+1)
	}
	return nil
}

// Node is this process's place in the cluster: the embedded NATS server
// (nil in external mode), a connection to it, and the stream.
type Node struct {
	cfg Config
	log *slog.Logger
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

var _ db.Stream = (*Node)(nil)

// Start starts the embedded server (or connects to the external one) and
// waits, until ctx ends, for the stream to be there: made by the first
// node to find a quorum, or found.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Log}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	// A generous connect timeout: a Pi busy starting, or a test machine
	// under the race detector, takes seconds over what takes milliseconds.
	opts := []nats.Option{nats.Name("nochat " + cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.Timeout(15 * time.Second)}
	if cfg.URL == "" {
		srv, err := n.startServer()
		if err != nil {
			return nil, err
		}
		n.srv = srv
		opts = append(opts, nats.InProcessServer(srv), nats.UserInfo(user, cfg.Secret))
	} else if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	n.nc = nc
	if mp := nc.MaxPayload(); mp < int64(cfg.MaxEntry) {
		// An external server's own bound: a message with a file near
		// -max-upload would be refused at each send, after 12 s of trying.
		n.Close()
		return nil, fmt.Errorf("the NATS server at %s takes messages of up to %d bytes, and a message with its file (-max-upload) may take %d: raise the server's max_payload, or lower -max-upload", cfg.URL, mp, cfg.MaxEntry)
	}
	if n.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout)); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.ensureStream(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// publishTimeout bounds how long a publish waits for the quorum.
const publishTimeout = 5 * time.Second

func (n *Node) startServer() (*server.Server, error) {
	cfg := n.cfg
	lhost, lport, _ := net.SplitHostPort(cfg.Listen)
	routePort, err := strconv.Atoi(lport)
	if err != nil {
		return nil, fmt.Errorf("-cluster-listen %q: bad port", cfg.Listen)
	}
	chost, cport, err := net.SplitHostPort(cmp.Or(cfg.ClientListen, "127.0.0.1:0"))
	if err != nil {
		return nil, fmt.Errorf("-nats-listen %q: %w", cfg.ClientListen, err)
	}
	clientPort, err := strconv.Atoi(cport)
	if err != nil {
		return nil, fmt.Errorf("-nats-listen %q: bad port", cfg.ClientListen)
	}
	if clientPort == 0 {
		clientPort = server.RANDOM_PORT
	}
	var routes []*url.URL
	for _, p := range cfg.Peers {
		routes = append(routes, &url.URL{Scheme: "nats", User: url.UserPassword(user, cfg.Secret), Host: p})
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("JetStream directory: %w", err)
	}
	// The server takes the secret as a bcrypt hash (NATS warns of a plain
	// one); routes present it inside their TLS (routeTLS), the local client
	// in this process or on loopback. The hash lives only in this process's
	// memory, so its cost buys nothing, while every route and client
	// connection pays it: the least cost.
	hash, err := bcrypt.GenerateFromPassword([]byte(cfg.Secret), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	name := cmp.Or(cfg.Name, "nochat")
	rtls, err := routeTLS(cfg.Secret, name, cfg.Node)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Node,
		Host:       chost,
		Port:       clientPort,
		Username:   user,
		Password:   string(hash),
		JetStream:  true,
		StoreDir:   cfg.Dir,
		// Every write on disk before it is acknowledged: JetStream's
		// default flushes every two minutes, and a power cut loses what
		// it acknowledged meanwhile.
		SyncAlways: true,
		MaxPayload: cfg.MaxEntry,
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name:      name,
			Host:      lhost,
			Port:      routePort,
			Username:  user,
			Password:  string(hash),
			Advertise: cfg.Advertise,
			TLSConfig: rtls,
			// A Pi busy starting answers a handshake in more than
			// NATS's default of two seconds.
			TLSTimeout: 10,
		},
		Routes: routes,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start NATS: %w", err)
	}
	srv.SetLoggerV2(natsLog{n.log}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("start NATS: not ready after 30 s (is %s or the client port in use?)", cfg.Listen)
	}
	// Where `nochat cluster status` finds this node: readable by this
	// user only, as the stream's files beside it are.
	status := (&url.URL{Scheme: "nats", User: url.UserPassword(user, cfg.Secret), Host: srv.Addr().String()}).String()
	if err := os.WriteFile(filepath.Join(cfg.Dir, clientURLFile), []byte(status+"\n"), 0o600); err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("JetStream directory: %w", err)
	}
	return srv, nil
}

// clientURLFile, in the JetStream directory, names the running node's
// client listener with its credentials, for `nochat cluster status`.
const clientURLFile = "client.url"

func (n *Node) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "NoChat's log: messages, edits, deletions, reactions, accounts and sign-ins, in order",
		Subjects:    []string{subject},
		Storage:     jetstream.FileStorage,
		Replicas:    n.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxMsgSize:  n.cfg.MaxEntry,
		// A new node builds its projection from the whole stream: nothing
		// is ever removed from it.
		DenyDelete: true,
		DenyPurge:  true,
		Duplicates: 2 * time.Minute,
	}
}

// ensureStream makes the stream, or finds it, once a quorum is up.
func (n *Node) ensureStream(ctx context.Context) error {
	began := time.Now()
	// Short tries, often: until the nodes have elected a leader, a try
	// waits for an answer that does not come.
	for wait := time.Duration(0); ; wait = min(2*wait+100*time.Millisecond, time.Second) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster's stream: %w", context.Cause(ctx))
		case <-time.After(wait):
		}
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := n.js.Stream(tctx, StreamName)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = n.js.CreateStream(tctx, n.streamConfig())
		}
		cancel()
		if err == nil {
			info := s.CachedInfo()
			if info.Config.Replicas != n.cfg.Replicas {
				n.log.Warn("the stream keeps its replicas; -replicas applies to a new cluster", "stream", info.Config.Replicas, "flag", n.cfg.Replicas)
			}
			return nil
		}
		if time.Since(began) > 5*time.Second {
			n.log.Info("waiting for a quorum of the cluster", "err", err)
		}
	}
}

// Publish appends entries to the stream and waits for each one's
// acknowledgement, which comes once a quorum stored it.
func (n *Node) Publish(ctx context.Context, entries []db.StreamEntry) []error {
	errs := make([]error, len(entries))
	futures := make([]jetstream.PubAckFuture, len(entries))
	for i, e := range entries {
		if e.Data == nil {
			errs[i] = errors.New("entry cannot be encoded")
			continue
		}
		futures[i], errs[i] = n.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: e.Data}, jetstream.WithMsgID(e.Key), jetstream.WithExpectStream(StreamName))
		if errs[i] != nil {
			errs[i] = unavailable(errs[i])
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			entries[i].Seq = int64(ack.Sequence)
		case err := <-f.Err():
			errs[i] = unavailable(err)
		case <-ctx.Done():
			errs[i] = unavailable(ctx.Err())
		}
	}
	return errs
}

// Last returns the sequence of the stream's last entry, as its leader
// knows it.
func (n *Node) Last(ctx context.Context) (int64, error) {
	s, err := n.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, unavailable(err)
	}
	return int64(s.CachedInfo().State.LastSeq), nil
}

// unavailable is err as a sender is told of it: the server's refusal as
// it is, anything else (no answer in time, no stream leader, no
// connection) as db.ErrUnavailable. Two refusals say the same: a node
// that led the stream and lost its leadership (cut off, or a new leader
// elected) answers "JetStream cluster can not handle request" (500, error
// code 10009), and an entry published again while its first publication
// still waits for a quorum is "duplicate message id is in process" (409,
// 10158). The writer publishes both again, as it does the others.
func unavailable(err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) && api.Code != 503 && api.ErrorCode != errCodeNotLeader && api.ErrorCode != errCodeInProcess {
		return err
	}
	return fmt.Errorf("%w: %v", db.ErrUnavailable, err)
}

// JetStream's JSClusterNotLeaderErr and JSStreamDuplicateMessageConflict,
// which nats.go does not name.
const (
	errCodeNotLeader jetstream.ErrorCode = 10009
	errCodeInProcess jetstream.ErrorCode = 10158
)

// Entries follows the stream from after on, in order, with an ordered
// consumer: it re-creates itself from where it was when the node loses
// its connection or the stream its leader.
func (n *Node) Entries(ctx context.Context, after int64) (<-chan db.StreamEntry, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, uint64(after+1)
	}
	cons, err := n.js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return nil, err
	}
	out := make(chan db.StreamEntry, 512)
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	go func() {
		defer close(out)
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return
			}
			if err != nil {
				continue // a missed heartbeat: the consumer re-creates itself
			}
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			select {
			case out <- db.StreamEntry{Seq: int64(meta.Sequence.Stream), Key: m.Headers().Get(jetstream.MsgIDHeader), Data: m.Data()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Close leaves the cluster: the connection, then the embedded server.
func (n *Node) Close() {
	if n.nc != nil {
		n.nc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// natsLog passes the embedded server's notices, warnings and errors to
// NoChat's log; its debug and trace lines are dropped.
type natsLog struct{ log *slog.Logger }

func (l natsLog) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (l natsLog) Warnf(format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	if strings.HasPrefix(msg, "Maximum payloads over") {
		// Entries that large are files as big as -max-upload allows,
		// which the admin chose; most entries are a few hundred bytes.
		l.log.Debug("nats: " + msg)
		return
	}
	l.log.Warn("nats: " + msg)
}
func (l natsLog) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (l natsLog) Errorf(format string, v ...any) {
	l.log.Error("nats: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (l natsLog) Debugf(string, ...any) {}
func (l natsLog) Tracef(string, ...any) {}

// validName reports whether s can name a node: letters, digits, - and _,
// at most 64 of them.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// peerSubject is where nodes tell each other what is not in the log
// (presence, typing): peerSubject.KIND.NODE.
const peerSubject = "nochat.peer"

// Share sends a document of a kind to the other nodes (chat.Peers). Core
// NATS, not the stream: it is not stored, and a lost one is replaced by
// the next.
func (n *Node) Share(kind string, doc []byte) {
	n.nc.Publish(peerSubject+"."+kind+"."+n.cfg.Node, doc)
}

// Listen hands fn the documents the other nodes share (chat.Peers).
func (n *Node) Listen(fn func(node, kind string, doc []byte)) {
	n.nc.Subscribe(peerSubject+".*.*", func(m *nats.Msg) {
		kind, node, ok := strings.Cut(strings.TrimPrefix(m.Subject, peerSubject+"."), ".")
		if ok && validName(node) && node != n.cfg.Node {
			fn(node, kind, m.Data)
		}
	})
}

// askSubject is where nodes ask each other questions that want answers
// (the dashboard's): askSubject.KIND to every other node,
// askSubject.KIND.NODE to one. The asking node is in the fromHeader, the
// answering one in the nodeHeader.
const (
	askSubject = "nochat.ask"
	fromHeader = "Nochat-From"
	nodeHeader = "Nochat-Node"
)

// Ask sends a question of a kind to every other node (to == "") or to one,
// and returns the answers by node: every one heard until each node named
// in expect has answered, or ctx ends (chat.Peers). An answer from a node
// not in expect is kept but does not end the wait for those that are.
func (n *Node) Ask(ctx context.Context, to, kind string, doc []byte, expect []string) map[string][]byte {
	answers := make(map[string][]byte)
	if len(expect) == 0 || to != "" && !validName(to) {
		return answers
	}
	inbox := n.nc.NewInbox()
	ch := make(chan *nats.Msg, max(len(expect), 8))
	sub, err := n.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return answers
	}
	defer sub.Unsubscribe()
	subj := askSubject + "." + kind
	if to != "" {
		subj += "." + to
	}
	q := nats.NewMsg(subj)
	q.Reply = inbox
	q.Header.Set(fromHeader, n.cfg.Node)
	q.Data = doc
	if n.nc.PublishMsg(q) != nil {
		return answers
	}
	unanswered := func(node string) bool { _, ok := answers[node]; return !ok }
	for slices.ContainsFunc(expect, unanswered) {
		select {
		case m := <-ch:
			if node := m.Header.Get(nodeHeader); validName(node) && node != n.cfg.Node && (to == "" || node == to) {
				answers[node] = m.Data
			}
		case <-ctx.Done():
			return answers
		}
	}
	return answers
}

// Name is this node's name (chat.Peers).
func (n *Node) Name() string { return n.cfg.Node }

// Answer has fn answer the questions the other nodes ask of every node or
// of this one (chat.Peers); a nil answer is none.
func (n *Node) Answer(fn func(kind string, doc []byte) []byte) {
	handle := func(m *nats.Msg) {
		if m.Reply == "" || m.Header.Get(fromHeader) == n.cfg.Node {
			return
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(m.Subject, askSubject+"."), ".")
		doc := fn(kind, m.Data)
		if doc == nil {
			return
		}
		a := nats.NewMsg(m.Reply)
		a.Header.Set(nodeHeader, n.cfg.Node)
		a.Data = doc
		if err := n.nc.PublishMsg(a); err != nil {
			n.log.Warn("answering another node", "kind", kind, "bytes", len(doc), "err", err)
		}
	}
	n.nc.Subscribe(askSubject+".*", handle)
	n.nc.Subscribe(askSubject+".*."+n.cfg.Node, handle)
}
