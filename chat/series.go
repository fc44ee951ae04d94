package chat

import (
	"sync"
	"time"

	"nochat/db"
)

// seriesMinutes is how far back the dashboard's charts look.
const seriesMinutes = 60

// series counts events per minute over the last hour, in a ring of buckets
// indexed by the minute, so recording costs a lock and an add.
type series struct {
	mu      sync.Mutex
	minute  [seriesMinutes]int64 // the Unix minute a bucket holds
	msgs    [seriesMinutes]int64
	errs    [seriesMinutes]int64
	conns   [seriesMinutes]int64 // the most connections open in that minute
	current int64                // connections open now
}

func (s *series) bucket(now time.Time) int {
	m := now.Unix() / 60
	i := int(m % seriesMinutes)
	if s.minute[i] != m {
		s.minute[i] = m
		s.msgs[i], s.errs[i], s.conns[i] = 0, 0, s.current
	}
	return i
}

func (s *series) addMessages(n int) {
	s.mu.Lock()
	s.msgs[s.bucket(time.Now())] += int64(n)
	s.mu.Unlock()
}

func (s *series) addError() {
	s.mu.Lock()
	s.errs[s.bucket(time.Now())]++
	s.mu.Unlock()
}

// seedErrors counts what the kept error log knows of the last hour before
// now, for a series that starts empty while the log survived a restart:
// every occurrence of an entry first seen within the hour (all of them
// are in it), else the last occurrence of one last seen within it. An
// entry's other occurrences are not dated, so this is a lower bound.
func (s *series) seedErrors(entries []db.ErrorEntry, now time.Time) {
	// The minutes a snapshot shows: the current one and the 59 before it.
	// The minute an hour ago shares its bucket with the current one, and
	// seeded, would empty it.
	since := time.Unix((now.Unix()/60-(seriesMinutes-1))*60, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		last := time.UnixMilli(e.LastSeen)
		if last.Before(since) || last.After(now) {
			continue
		}
		n := int64(1)
		if !time.UnixMilli(e.FirstSeen).Before(since) {
			n = max(1, e.Count)
		}
		s.errs[s.bucket(last)] += n
	}
}

func (s *series) setConnections(n int) {
	s.mu.Lock()
	s.current = int64(n)
	i := s.bucket(time.Now())
	s.conns[i] = max(s.conns[i], s.current)
	s.mu.Unlock()
}

// Series is the last hour, one point a minute, oldest first.
type Series struct {
	Messages    []int64 // messages stored per minute
	Errors      []int64 // errors per minute
	Connections []int64 // most connections open in each minute
}

func (s *series) snapshot(now time.Time) Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Series{
		Messages:    make([]int64, seriesMinutes),
		Errors:      make([]int64, seriesMinutes),
		Connections: make([]int64, seriesMinutes),
	}
	last := now.Unix() / 60
	// A minute without events saw no connection come or go: it had as
	// many as the minute before it.
	var carry int64
	for k := range seriesMinutes {
		m := last - int64(seriesMinutes-1-k)
		i := int(m % seriesMinutes)
		if s.minute[i] == m {
			out.Messages[k], out.Errors[k], out.Connections[k] = s.msgs[i], s.errs[i], s.conns[i]
			carry = s.conns[i]
		} else {
			out.Connections[k] = carry
		}
	}
	if s.minute[int(last%seriesMinutes)] != last {
		out.Connections[seriesMinutes-1] = s.current
	}
	return out
}

// Sum returns the total of the last n points.
func Sum(points []int64, n int) int64 {
	var t int64
	for _, p := range points[max(0, len(points)-n):] {
		t += p
	}
	return t
}
