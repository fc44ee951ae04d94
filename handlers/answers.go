package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"nochat/chat"
)

// A chat page or a page of history holds its messages (up to 51 of them
// at once, up to 8 KB each) until the client has taken the answer, which a
// client that never reads makes last the write timeout, a minute. One
// address holds at most 128 HTTP connections, but an attacker with several
// addresses could make hundreds of such answers wait at once (768 from six
// addresses held 361 MB of heap, past a Pi's memory). So the answers that
// hold messages are bounded: heavyAnswersPerAddress at once for one
// address, and heavyAnswers in all. One over either waits its turn (a
// browser restoring ten tabs at once only queues for a few milliseconds),
// up to heavyAnswerWait, and is then refused: 429 for its address's
// bound, 503 for the server's. Six addresses now hold 24 answers, and
// everyone else is served; it takes sixteen to make others wait.

const (
	heavyAnswers           = 64
	heavyAnswersPerAddress = 4
	heavyAnswerWait        = 10 * time.Second
)

var (
	errHeavyPerAddress = errors.New("too many pages are being sent to this address at once: wait for them to arrive")
	errHeavyBusy       = errors.New("the server is sending too many pages at once: try again in a moment")
)

// answerSlots bounds the heavy answers in progress.
type answerSlots struct {
	all        chan struct{}
	max        int // per address
	wait       time.Duration
	trustProxy bool

	mu  sync.Mutex
	per map[string]*addressSlots // by chat.AddressKey
}

// addressSlots are one address's answers in progress, and how many
// requests hold or wait for them (the entry goes with the last).
type addressSlots struct {
	held  chan struct{}
	users int
}

func newAnswerSlots(trustProxy bool) *answerSlots {
	return &answerSlots{all: make(chan struct{}, heavyAnswers), max: heavyAnswersPerAddress, wait: heavyAnswerWait, trustProxy: trustProxy, per: make(map[string]*addressSlots)}
}

// bound serves next within the bounds: an answer that holds messages
// while its client takes it.
func (s *answerSlots) bound(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := chat.AddressKey(chat.ClientIP(r, s.trustProxy))
		s.mu.Lock()
		a := s.per[key]
		if a == nil {
			a = &addressSlots{held: make(chan struct{}, s.max)}
			s.per[key] = a
		}
		a.users++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if a.users--; a.users == 0 {
				delete(s.per, key)
			}
			s.mu.Unlock()
		}()
		t := time.NewTimer(s.wait)
		defer t.Stop()
		refuse := func(status int, err error) {
			w.Header().Set("Retry-After", "5")
			refuseRequest(w, r, log, status, err) // a page's in words, not JSON
		}
		select {
		case a.held <- struct{}{}:
			defer func() { <-a.held }()
		case <-t.C:
			refuse(http.StatusTooManyRequests, errHeavyPerAddress)
			return
		case <-r.Context().Done():
			return
		}
		select {
		case s.all <- struct{}{}:
			defer func() { <-s.all }()
		case <-t.C:
			refuse(http.StatusServiceUnavailable, errHeavyBusy)
			return
		case <-r.Context().Done():
			return
		}
		next.ServeHTTP(w, r)
	})
}
