package handlers

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a client address). Buckets idle
// for a while are forgotten, so memory stays bounded however many
// addresses come by.
type keyedLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an unused bucket is kept. A full bucket refills in
// far less, so forgetting it changes nothing for its owner.
const idleAfter = 10 * time.Minute

func newKeyedLimiter(limit rate.Limit, burst int) *keyedLimiter {
	return &keyedLimiter{limit: limit, burst: burst, buckets: make(map[string]*bucket), swept: time.Now()}
}

// allow takes a token from key's bucket, reporting false when it is empty.
func (k *keyedLimiter) allow(key string) bool { return k.allowAt(key, time.Now()) }

// allowAt is allow at the given time.
func (k *keyedLimiter) allowAt(key string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.swept) > idleAfter {
		for key, b := range k.buckets {
			if now.Sub(b.seen) > idleAfter {
				delete(k.buckets, key)
			}
		}
		k.swept = now
	}
	b, ok := k.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
