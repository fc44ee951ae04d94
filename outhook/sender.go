// Package outhook sends bots' outgoing webhooks (issue 16, item 4): when a
// bot with a webhook URL is @mentioned, or sent a message in a direct room
// it is in, NoChat POSTs the message to that URL, signed with the bot's
// secret; a text answer becomes the bot's reply in the room.
//
// The hub hands each new message to Sender.Posted, which only queues: one
// goroutine picks the bots it is for, a few workers make the requests, so
// a slow or dead receiver never holds up the chat. Requests go out through
// a Guard (guard.go): no loopback, private or link-local address unless
// the admin allowed the host, the address checked being the one dialled,
// no redirects followed, no proxy.
package outhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nochat/chat"
	"nochat/db"
)

// The request's headers: the time it was signed (Unix seconds) and the
// signature, "sha256=" and the hex HMAC-SHA256, keyed with the bot's
// secret, of the timestamp, ".", and the body as sent.
const (
	HeaderTimestamp = "X-NoChat-Timestamp"
	HeaderSignature = "X-NoChat-Signature"
)

// KindFailed is the recent-errors kind of a webhook that failed for good.
const KindFailed = "outgoing webhook failed"

// SecretPrefix begins every webhook secret, so a secret pasted in the
// wrong place is recognisable.
const SecretPrefix = "nochat_whsec_"

// maxReplyBytes bounds the answer read from a receiver: more is a failure
// (the message limit is far smaller anyway).
const maxReplyBytes = 16 << 10

// NewSecret returns a new random webhook secret (32 bytes of randomness).
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Sign is the X-NoChat-Signature of body sent at timestamp (Unix seconds)
// with secret.
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Store is what the sender reads of the database.
type Store interface {
	BotWebhooks(ctx context.Context) ([]db.BotWebhook, error)
	IsMember(ctx context.Context, room, user int64) (bool, error)
}

// Hub is what the sender needs of the chat: the rooms, the bot's reply
// (persisted, then broadcast, as the bot's REST post is), the bots' rate
// limit, and the admin's recent errors.
type Hub interface {
	Room(id int64) (db.Room, bool)
	Reply(ctx context.Context, id chat.Identity, r db.Room, user, text, key string, replyTo int64) (db.Stored, error)
	BotAllowed(id int64) bool
	RecordErrorAt(kind, place, detail, subject string)
}

// Options tune a Sender. Zero values take the defaults.
type Options struct {
	Log *slog.Logger
	// Allow lists the hosts and host:port pairs that may be called though
	// they are loopback, private or link-local (-webhook-allow).
	Allow []string
	// Resolver looks host names up (net.DefaultResolver).
	Resolver Resolver
	// Timeout bounds one request, from connecting to the answer's last
	// byte (7 s).
	Timeout time.Duration
	// Queue is how many messages, and apart from them how many requests,
	// may wait (256 each); past it a message calls no webhook, counted
	// and in the recent errors.
	Queue int
	// Workers is how many requests may be under way at once (4).
	Workers int
	// Attempts is how many times one request is tried (4); Backoff is the
	// first wait between tries (1 s), four times longer each time: 1 s,
	// 4 s, 16 s.
	Attempts int
	Backoff  time.Duration
	// Refresh is how long the list of webhooks is kept before it is read
	// again (1 s), so that one set from the shell counts within it.
	Refresh time.Duration
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 7 * time.Second
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
}

// job is one request: one message for one bot, and how often it was tried.
type job struct {
	hook  db.BotWebhook
	msg   db.Message
	room  db.Room
	body  []byte
	tries int
}

// Sender sends bots' outgoing webhooks. Posted queues; Run sends until
// its context ends.
type Sender struct {
	opts   Options
	log    *slog.Logger
	store  Store
	guard  *Guard
	client *http.Client

	msgs chan db.Message
	jobs chan job
	hub  atomic.Pointer[hubRef] // set by Run

	// Read and written by the dispatching goroutine only.
	hooks     []db.BotWebhook
	hooksRead time.Time

	sent    atomic.Int64 // requests a receiver accepted (2xx)
	dropped atomic.Int64 // messages or requests dropped: a queue was full
	failed  atomic.Int64 // requests given up on
}

type hubRef struct{ Hub }

// New is a Sender reading bots' webhooks from store.
func New(store Store, opts Options) *Sender {
	opts.setDefaults()
	s := &Sender{
		opts:  opts,
		log:   opts.Log,
		store: store,
		guard: NewGuard(opts.Allow, opts.Resolver),
		msgs:  make(chan db.Message, opts.Queue),
		jobs:  make(chan job, opts.Queue),
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // straight to the receiver: a proxy would dial what the guard did not check
			DialContext:           s.guard.DialContext,
			TLSHandshakeTimeout:   opts.Timeout,
			ResponseHeaderTimeout: opts.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		Timeout: opts.Timeout,
		// A redirect is not followed: it could lead anywhere, the guard's
		// check of the first host notwithstanding.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// Guard is the sender's guard, for checking a URL before it is stored.
func (s *Sender) Guard() *Guard { return s.guard }

// Stats are the requests accepted, the messages or requests dropped on a
// full queue, and the requests given up on, since the start.
func (s *Sender) Stats() (sent, dropped, failed int64) {
	return s.sent.Load(), s.dropped.Load(), s.failed.Load()
}

// Posted queues m without waiting (a chat.PostedFunc, called on the
// broadcaster); past the queue's bound it drops, counts and records.
func (s *Sender) Posted(m db.Message) {
	if m.Bot {
		// Never a bot's own message, nor another bot's: two bots
		// mentioning each other would otherwise talk forever.
		return
	}
	select {
	case s.msgs <- m:
	default:
		s.drop("message " + strconv.FormatInt(m.ID, 10))
	}
}

// drop counts a message or request dropped on a full queue.
func (s *Sender) drop(subject string) {
	n := s.dropped.Add(1)
	if n == 1 || n%100 == 0 {
		if h := s.hub.Load(); h != nil {
			h.RecordErrorAt(KindFailed, "outgoing webhooks: queue full", fmt.Sprintf("%d dropped since the start", n), subject)
		} else {
			s.log.Warn("outgoing webhooks: queue full", "dropped", n)
		}
	}
}

// Run sends until ctx ends, then waits for its requests to end (ctx ends
// them too). base is the server's address as bots reach it
// ("http://localhost:8080"), for the payload's reply_url.
func (s *Sender) Run(ctx context.Context, hub Hub, base string) {
	base = strings.TrimSuffix(base, "/")
	s.hub.Store(&hubRef{hub})
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-s.jobs:
					s.send(ctx, hub, j)
				}
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case m := <-s.msgs:
			s.dispatch(ctx, hub, base, m)
		}
	}
}

// webhooks is the bots' webhooks, read again once Refresh old.
func (s *Sender) webhooks(ctx context.Context) []db.BotWebhook {
	if now := time.Now(); now.Sub(s.hooksRead) > s.opts.Refresh {
		hooks, err := s.store.BotWebhooks(ctx)
		if err != nil {
			s.log.Error("outgoing webhooks: read", "err", err)
			return s.hooks // the last ones known
		}
		s.hooks, s.hooksRead = hooks, now
	}
	return s.hooks
}

// dispatch queues a request for each bot m is for: one it mentions, or
// one in m's direct room; and only a bot in m's room (a mention never
// shows a bot a room it was not given).
func (s *Sender) dispatch(ctx context.Context, hub Hub, base string, m db.Message) {
	hooks := s.webhooks(ctx)
	if len(hooks) == 0 {
		return
	}
	room, ok := hub.Room(m.Room)
	if !ok {
		return
	}
	for _, h := range hooks {
		if m.UserID != nil && *m.UserID == h.Bot.ID {
			continue
		}
		mentioned := false
		for _, mn := range m.Mentions {
			mentioned = mentioned || mn.UserID == h.Bot.ID
		}
		if !mentioned && room.Kind != db.KindDirect {
			continue
		}
		in, err := s.store.IsMember(ctx, room.ID, h.Bot.ID)
		if err != nil {
			s.log.Error("outgoing webhooks: membership", "err", err)
			continue
		}
		if !in {
			continue
		}
		body, err := json.Marshal(payload(base, h, m, room, mentioned))
		if err != nil {
			continue
		}
		s.queue(job{hook: h, msg: m, room: room, body: body})
	}
}

func (s *Sender) queue(j job) {
	select {
	case s.jobs <- j:
	default:
		s.drop(fmt.Sprintf("message %d for bot %s", j.msg.ID, j.hook.Bot.Name))
	}
}

// Payload is the JSON body of a webhook's request.
type Payload struct {
	// Trigger is why the bot is told: "mention" or "direct".
	Trigger string         `json:"trigger"`
	Message PayloadMessage `json:"message"`
	Bot     PayloadUser    `json:"bot"`
	// ReplyURL is where the bot may post more with its token (Bearer);
	// the answer's body is the simpler way to reply.
	ReplyURL string `json:"reply_url"`
}

// PayloadMessage is the message a webhook is told of.
type PayloadMessage struct {
	ID        int64       `json:"id"`
	Text      string      `json:"text"`
	HTML      string      `json:"html"`
	Timestamp int64       `json:"timestamp"` // Unix milliseconds
	Room      PayloadRoom `json:"room"`
	User      PayloadUser `json:"user"`
}

// PayloadRoom is a message's room.
type PayloadRoom struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// PayloadUser is a message's author, or the bot told.
type PayloadUser struct {
	ID   int64  `json:"id"` // 0 for a guest
	Name string `json:"name"`
	Bot  bool   `json:"bot"`
}

func payload(base string, h db.BotWebhook, m db.Message, r db.Room, mentioned bool) Payload {
	p := Payload{
		Trigger: "direct",
		Message: PayloadMessage{
			ID: m.ID, Text: m.Message, HTML: chat.MessageHTML(m.Message, m.Mentions), Timestamp: m.Timestamp,
			Room: PayloadRoom{ID: r.ID, Slug: r.Slug, Name: r.Name, Kind: r.Kind},
			User: PayloadUser{Name: m.User, Bot: m.Bot},
		},
		Bot:      PayloadUser{ID: h.Bot.ID, Name: h.Bot.Name, Bot: true},
		ReplyURL: base + "/rooms/" + url.PathEscape(r.Slug) + "/messages",
	}
	if mentioned {
		p.Trigger = "mention"
	}
	if m.UserID != nil {
		p.Message.User.ID = *m.UserID
	}
	return p
}

// errFinal marks a failure not worth another try.
type errFinal struct{ error }

// send makes one try of j, and schedules the next or records the failure.
func (s *Sender) send(ctx context.Context, hub Hub, j job) {
	j.tries++
	reply, err := s.call(ctx, j)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		s.sent.Add(1)
		if reply != "" {
			s.post(ctx, hub, j, reply)
		}
		return
	}
	var final errFinal
	if !errors.As(err, &final) && j.tries < s.opts.Attempts {
		wait := s.opts.Backoff << (2 * (j.tries - 1)) // 1, 4, 16 × Backoff
		s.log.Info("outgoing webhook: will try again", "bot", j.hook.Bot.Name, "message", j.msg.ID, "try", j.tries, "in", wait, "err", err)
		time.AfterFunc(wait, func() {
			if ctx.Err() == nil {
				s.queue(j)
			}
		})
		return
	}
	s.failed.Add(1)
	hub.RecordErrorAt(KindFailed, "outgoing webhook of bot "+j.hook.Bot.Name,
		fmt.Sprintf("%s, after %d tries: %v", Host(j.hook.URL), j.tries, err), "message "+strconv.FormatInt(j.msg.ID, 10))
}

// Host is the scheme and host of a webhook URL, what the recent errors and
// the audit list show of it: its path or query may hold a secret of the
// receiver's.
func Host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the webhook URL"
	}
	return u.Scheme + "://" + u.Host
}

// call makes one request of j and returns the reply its answer holds ("":
// none), or why it failed (errFinal: do not try again).
func (s *Sender) call(ctx context.Context, j job) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.hook.URL, bytes.NewReader(j.body))
	if err != nil {
		return "", errFinal{err}
	}
	now := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "NoChat-Webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now, 10))
	req.Header.Set(HeaderSignature, Sign(j.hook.Secret, now, j.body))
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrRefusedAddress) {
			return "", errFinal{ErrRefusedAddress}
		}
		return "", err
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code == http.StatusTooManyRequests || code >= 500:
		return "", fmt.Errorf("answered %d", code)
	case code >= 300 && code < 400:
		return "", errFinal{fmt.Errorf("answered %d, a redirect (not followed)", code)}
	default:
		return "", errFinal{fmt.Errorf("answered %d", code)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxReplyBytes {
		return "", errFinal{fmt.Errorf("answered more than %d bytes", maxReplyBytes)}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "text/plain":
		return strings.TrimSpace(string(b)), nil
	case "application/json":
		var v struct {
			Text string `json:"text"`
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return "", nil
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return "", errFinal{errors.New(`answered JSON that is not {"text": "..."}`)}
		}
		return strings.TrimSpace(v.Text), nil
	}
	return "", nil // any other answer posts nothing
}

// post makes reply the bot's message in j's room, answering j's message,
// once: the triggering message's id is the send's key, so a second
// delivery of one message posts no second reply.
func (s *Sender) post(ctx context.Context, hub Hub, j job, reply string) {
	place := "outgoing webhook of bot " + j.hook.Bot.Name
	subject := "message " + strconv.FormatInt(j.msg.ID, 10)
	if !hub.BotAllowed(j.hook.Bot.ID) {
		hub.RecordErrorAt(chat.KindRateLimited, place, "the bot's reply is over the bot rate limit: not posted", subject)
		return
	}
	room, ok := hub.Room(j.room.ID)
	if !ok {
		return
	}
	id := chat.Identity{UserID: j.hook.Bot.ID, Name: j.hook.Bot.Name, Role: db.RoleBot}
	key := "webhook-reply-" + strconv.FormatInt(j.msg.ID, 10)
	if _, err := hub.Reply(ctx, id, room, j.hook.Bot.Name, reply, key, j.msg.ID); err != nil {
		hub.RecordErrorAt(KindFailed, place, "the bot's reply was refused: "+err.Error(), subject)
	}
}
