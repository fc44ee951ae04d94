package chat

import (
	"sync"

	"golang.org/x/time/rate"
)

// botLimits holds one rate limiter per bot account, shared by its sockets
// and its REST calls, so that a bot cannot send faster by opening more
// connections. There are as many as an admin made bots: a few.
type botLimits struct {
	rate  float64 // messages a second; less than 0: no limit
	burst int

	mu  sync.Mutex
	per map[int64]*rate.Limiter
}

// limiter is bot id's limiter, nil when bots are not limited.
func (b *botLimits) limiter(id int64) *rate.Limiter {
	if b.rate < 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.per == nil {
		b.per = make(map[int64]*rate.Limiter)
	}
	l, ok := b.per[id]
	if !ok {
		l = rate.NewLimiter(rate.Limit(b.rate), b.burst)
		b.per[id] = l
	}
	return l
}

// BotAllowed reports whether bot id may send (or change) one more message
// now, and counts it if so: REST's half of the limit its sockets share.
func (h *Hub) BotAllowed(id int64) bool {
	l := h.bots.limiter(id)
	return l == nil || l.Allow()
}

// CloseBotRevoked is the close reason of a bot's socket whose token was
// rotated or revoked.
const CloseBotRevoked = "the bot's token was revoked or replaced"
