package chat

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/time/rate"

	"nochat/db"
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

// ErrNotBot refuses a bot's action on an account that is a person's.
var ErrNotBot = &Refusal{"not_found", "no such bot"}

// GrantRooms makes rooms (by id) bot's rooms, and no others: an admin's
// change of its grants, told to its open sockets as any membership change
// is. A room that is not there, or a direct one, is refused before
// anything changes. It reports the rooms added and removed.
func (h *Hub) GrantRooms(ctx context.Context, bot db.Account, rooms []int64) (added, removed []int64, err error) {
	if bot.Role != db.RoleBot {
		return nil, nil, ErrNotBot
	}
	want := make(roomSet, len(rooms))
	for _, id := range rooms {
		r, ok := h.Room(id)
		if !ok || r.Kind == db.KindDirect {
			return nil, nil, ErrNoRoom
		}
		want[id] = struct{}{}
	}
	have, err := h.roomsOf(ctx, bot.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%w)", ErrRoomStore, err)
	}
	for id := range want {
		if have.has(id) {
			continue
		}
		if err := h.store.AddMember(ctx, id, bot.ID); err != nil {
			return added, removed, fmt.Errorf("%w (%w)", ErrRoomStore, err)
		}
		h.memberChanged(bot.ID, id, true)
		added = append(added, id)
	}
	for id := range have {
		if r, ok := h.Room(id); want.has(id) || ok && r.Kind == db.KindDirect {
			continue // a direct room is a person's conversation with it, not a grant
		}
		r, _ := h.Room(id)
		r.ID = id
		if err := h.removeMember(ctx, r, bot.ID); err != nil {
			return added, removed, err
		}
		removed = append(removed, id)
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed, nil
}
