// Package push sends Web Push notifications (RFC 8030, with the payload
// encrypted per RFC 8291 and the server identified per RFC 8292, VAPID)
// to the devices people subscribed, through github.com/SherClockHolmes/webpush-go.
//
// The chat hub decides whom to tell of a message (chat/notify.go) and
// calls Push, which only queues; one goroutine sends, retries with backoff
// on 429, 5xx and network errors, and deletes a subscription the push
// service says is gone (404, 410).
package push

import (
	"context"
	"crypto/ecdh"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"nochat/chat"
	"nochat/db"
	"nochat/outhook"
)

// Store is what the sender needs of the database.
type Store interface {
	Setting(ctx context.Context, key string) (string, error)
	SettingOr(ctx context.Context, key, value string) (string, error)
	SharedSettingOr(ctx context.Context, key, value string) (string, error)
	PushSubscriptions(ctx context.Context, account int64, now time.Time) ([]db.PushSubscription, error)
	DropPushSubscription(ctx context.Context, endpoint string) error
}

// Options tune a Sender. Zero values take the defaults.
type Options struct {
	Log *slog.Logger
	// Subject is the VAPID subject push services may contact the server's
	// operator at: "mailto:..." or "https://...".
	Subject string
	// TTL is how long a push service keeps a push for a device that is
	// off (24 h).
	TTL time.Duration
	// Queue is how many pushes may wait to be sent (256); past it Push
	// drops and counts.
	Queue int
	// Attempts is how many times one push is tried (4); Backoff is the
	// first wait between tries (1 s), doubled each time.
	Attempts int
	Backoff  time.Duration
	// Shared is set on a cluster's node: the VAPID keys are the
	// cluster's, decided through its log once the node runs (Run), since
	// a page subscribes with the key of whichever node answered it and
	// any node may push to it.
	Shared bool

	// For tests only: AllowLoopback lets endpoints on loopback addresses
	// through (a push service stand-in on 127.0.0.1), and RootCAs is the
	// certificates to trust instead of the system's (the stand-in's).
	// Private, link-local and other addresses stay refused.
	AllowLoopback bool
	RootCAs       *x509.CertPool
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
}

// Limits on what a subscription may be.
const (
	MaxEndpointBytes = 1024
	authBytes        = 16
)

// settingPrivate is the settings key of the VAPID private key, made at
// first start; settingShared is a cluster's, the same on every node.
const (
	settingPrivate = "vapid_private_key"
	settingShared  = "cluster_vapid_private_key"
)

// vapid is a VAPID key pair, base64url.
type vapid struct{ private, public string }

// job is one push to one person, and how many times it was tried.
type job struct {
	user  int64
	n     chat.Notification
	sub   *db.PushSubscription // set on a retry: only the device that failed
	tries int
}

// Sender sends pushes. Push queues; Run sends until its context ends.
type Sender struct {
	log    *slog.Logger
	opts   Options
	store  Store
	client *http.Client

	keys    atomic.Pointer[vapid] // nil on a cluster's node until Run has them
	subject string                // as webpush-go wants it (see New)

	jobs chan job

	sent    atomic.Int64 // pushes a push service accepted
	dropped atomic.Int64 // pushes dropped: the queue was full
	gone    atomic.Int64 // subscriptions deleted on 404 or 410
	failed  atomic.Int64 // pushes given up on
}

// New loads the VAPID key pair from the store, making and storing one at
// first start; on a cluster's node (Options.Shared), Run does.
func New(ctx context.Context, store Store, opts Options) (*Sender, error) {
	opts.setDefaults()
	if !strings.HasPrefix(opts.Subject, "mailto:") && !strings.HasPrefix(opts.Subject, "https://") {
		return nil, fmt.Errorf("push subject %q: want mailto:address or https://URL", opts.Subject)
	}
	s := &Sender{
		log: opts.Log, opts: opts, store: store,
		// webpush-go puts "mailto:" before a subject that does not start
		// with "https:": give it the address alone.
		subject: strings.TrimPrefix(opts.Subject, "mailto:"),
		jobs:    make(chan job, opts.Queue),
	}
	s.client = s.newClient()
	if !opts.Shared {
		if err := s.decideKeys(func(priv string) (string, error) { return store.SettingOr(ctx, settingPrivate, priv) }); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// decideKeys makes a key pair and has store keep it, or the one it keeps
// already. Only the private key is stored: of two first starts at once,
// both keep the one stored first, and the public key follows from it.
func (s *Sender) decideKeys(store func(priv string) (string, error)) error {
	priv, _, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return fmt.Errorf("make VAPID keys: %w", err)
	}
	if priv, err = store(priv); err != nil {
		return fmt.Errorf("VAPID key: %w", err)
	}
	pub, err := publicOf(priv)
	if err != nil {
		return fmt.Errorf("VAPID key: %w", err)
	}
	s.keys.Store(&vapid{private: priv, public: pub})
	return nil
}

// shareKeys decides a cluster's key pair: the one its log holds, or one
// this node makes, through the log. While the cluster cannot confirm it
// (no quorum), it tries again, up to every 30 s, until ctx ends (false).
func (s *Sender) shareKeys(ctx context.Context) bool {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := s.decideKeys(func(priv string) (string, error) {
			// Applied here already (the node ran before): no need to ask.
			if v, err := s.store.Setting(ctx, settingShared); err == nil {
				return v, nil
			}
			return s.store.SharedSettingOr(ctx, settingShared, priv)
		})
		if err == nil {
			return true
		}
		s.log.Warn("push: the cluster's VAPID key: trying again", "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
}

// publicOf is the uncompressed P-256 public key of a base64url private key.
func publicOf(private string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(private, "="))
	if err != nil {
		return "", err
	}
	k, err := ecdh.P256().NewPrivateKey(raw)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), nil
}

// PublicKey is the VAPID public key, base64url (uncompressed P-256): the
// applicationServerKey a page subscribes with; "" on a cluster's node
// until its cluster has decided it.
func (s *Sender) PublicKey() string {
	if k := s.keys.Load(); k != nil {
		return k.public
	}
	return ""
}

// Stats are counts since start: pushes accepted by push services, dropped
// (queue full), subscriptions deleted as gone, pushes given up on.
func (s *Sender) Stats() (sent, dropped, gone, failed int64) {
	return s.sent.Load(), s.dropped.Load(), s.gone.Load(), s.failed.Load()
}

// CheckSubscription refuses a subscription the server will not push to: an
// endpoint that is not https, longer than MaxEndpointBytes, or at an IP
// address (push services have names; an address would let a signed-in
// person make the server post into its own network), and keys that are not
// a P-256 point and a 16-byte secret. Names are checked again where they
// resolve, at send time.
func (s *Sender) CheckSubscription(endpoint, p256dh, auth string) error {
	if endpoint == "" {
		return errors.New("endpoint is missing")
	}
	if len(endpoint) > MaxEndpointBytes {
		return fmt.Errorf("endpoint is longer than %d bytes", MaxEndpointBytes)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return errors.New("endpoint must be an https:// URL")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !(s.opts.AllowLoopback && ip.IsLoopback()) {
		return errors.New("endpoint must name a push service, not an IP address")
	}
	if k, err := decodeKey(p256dh); err != nil || len(k) != 65 {
		return errors.New("keys.p256dh must be a P-256 public key (65 bytes, base64url)")
	} else if _, err := ecdh.P256().NewPublicKey(k); err != nil {
		return errors.New("keys.p256dh is not a point of P-256")
	}
	if k, err := decodeKey(auth); err != nil || len(k) != authBytes {
		return errors.New("keys.auth must be 16 bytes, base64url")
	}
	return nil
}

// decodeKey reads base64url, padded or not, as browsers send it.
func decodeKey(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Push queues n for user's devices without waiting (chat.Pusher); past the
// queue's bound it drops and counts.
func (s *Sender) Push(user int64, n chat.Notification) {
	select {
	case s.jobs <- job{user: user, n: n}:
	default:
		if d := s.dropped.Add(1); d == 1 || d%100 == 0 {
			s.log.Warn("push queue full: notifications dropped", "dropped", d)
		}
	}
}

// Run sends queued pushes until ctx ends; on a cluster's node, once it
// has the cluster's keys (pushes queue meanwhile).
func (s *Sender) Run(ctx context.Context) {
	if s.keys.Load() == nil && !s.shareKeys(ctx) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.jobs:
			s.send(ctx, j)
		}
	}
}

// send pushes j to each of its person's devices (or to the one it names).
func (s *Sender) send(ctx context.Context, j job) {
	subs, err := s.store.PushSubscriptions(ctx, j.user, time.Now())
	if err != nil {
		s.log.Error("push: subscriptions", "user", j.user, "err", err)
		return
	}
	if j.sub != nil {
		// A retry is for one device, if it is still subscribed: its
		// session may have ended while the push waited.
		subs = slices.DeleteFunc(subs, func(p db.PushSubscription) bool { return p.ID != j.sub.ID })
	}
	payload, err := json.Marshal(j.n)
	if err != nil {
		return
	}
	urgency := webpush.UrgencyNormal
	if j.n.Urgent {
		urgency = webpush.UrgencyHigh
	}
	for _, sub := range subs {
		ok := s.sendOne(ctx, sub, payload, urgency)
		if ok || ctx.Err() != nil {
			continue
		}
		if j.tries+1 >= s.opts.Attempts {
			s.failed.Add(1)
			s.log.Warn("push: giving up", "subscription", sub.ID, "tries", j.tries+1)
			continue
		}
		// Tried again later, off this goroutine's way: the wait doubles
		// each time. The job goes back through the queue, so the retry
		// is dropped like any push if the queue is full.
		again := job{user: j.user, n: j.n, sub: &sub, tries: j.tries + 1}
		wait := s.opts.Backoff << j.tries
		time.AfterFunc(wait, func() {
			if ctx.Err() != nil {
				return
			}
			select {
			case s.jobs <- again:
			default:
				s.dropped.Add(1)
			}
		})
	}
}

// sendOne sends one push to one device and reports whether it is done
// with: accepted, or refused for good (a gone subscription is deleted).
// false means try again later: 429, 5xx, or the network failed.
func (s *Sender) sendOne(ctx context.Context, sub db.PushSubscription, payload []byte, urgency webpush.Urgency) bool {
	keys := s.keys.Load() // set: Run sends nothing before
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &webpush.Subscription{
		Endpoint: sub.Endpoint,
		Keys:     webpush.Keys{P256dh: sub.P256dh, Auth: sub.Auth},
	}, &webpush.Options{
		HTTPClient:      s.client,
		Subscriber:      s.subject,
		TTL:             int(s.opts.TTL / time.Second),
		Urgency:         urgency,
		VAPIDPublicKey:  keys.public,
		VAPIDPrivateKey: keys.private,
		VapidExpiration: time.Now().Add(12 * time.Hour),
	})
	if err != nil {
		if errors.Is(err, errRefusedAddress) {
			s.failed.Add(1)
			s.log.Warn("push: endpoint refused", "subscription", sub.ID, "err", err)
			return true // never worth another try
		}
		s.log.Info("push: send", "subscription", sub.ID, "err", err)
		return false
	}
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		s.sent.Add(1)
		return true
	case code == http.StatusNotFound || code == http.StatusGone:
		// The browser unsubscribed, or the push service forgot it.
		if err := s.store.DropPushSubscription(ctx, sub.Endpoint); err != nil {
			s.log.Error("push: delete gone subscription", "subscription", sub.ID, "err", err)
		}
		s.gone.Add(1)
		return true
	case code == http.StatusTooManyRequests || code >= 500:
		s.log.Info("push: push service busy", "subscription", sub.ID, "status", code)
		return false
	default:
		s.failed.Add(1)
		s.log.Warn("push: refused", "subscription", sub.ID, "status", code)
		return true
	}
}

var errRefusedAddress = errors.New("push endpoint resolves to a loopback, private or link-local address")

// newClient is the HTTP client pushes go out with: it connects only to
// public addresses, checked on the address the name resolved to (a name
// may resolve into the LAN), and follows no redirects.
func (s *Sender) newClient() *http.Client {
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || !s.publicAddr(ip.Unmap()) {
				return fmt.Errorf("dial %s: %w", address, errRefusedAddress)
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:               nil, // straight to the push service
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: s.opts.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// publicAddr reports whether ip may be pushed to: not loopback (unless the
// tests allow it), nor any other address outhook.Refused keeps webhooks
// from (private, link-local, shared, multicast, unspecified).
func (s *Sender) publicAddr(ip netip.Addr) bool {
	if ip.IsLoopback() {
		return s.opts.AllowLoopback
	}
	return !outhook.Refused(ip)
}
