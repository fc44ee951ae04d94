package views

import (
	"strconv"
	"time"

	"nochat/db"
)

// People is the dashboard's list of people and what an admin may do to
// each.
type People struct {
	Items []PersonRow // oldest account first
	Me    int64       // the admin looking at it; 0 for the admin password
	Taken time.Time   // when it was read
	Reset ResetLink   // a password-reset link just made, shown this once
	Done  string      // what the last action on the list did, said once
}

// PersonRow is one account on the list of people.
type PersonRow struct {
	db.PersonInfo
	Online int // sockets open now
}

// ResetLink is a one-time password-reset link, shown once to the admin
// who made it.
type ResetLink struct {
	Name    string // whose password it resets
	Link    string
	Expires time.Time
}

// Reset is the page a password-reset link opens.
type Reset struct {
	Name        string // whose password it sets
	Action      string // where the form posts: the link itself
	Problem     string
	MinPassword int
	MaxPassword int
}

func (p PersonRow) url(action string) string {
	return "/admin/people/" + strconv.FormatInt(p.ID, 10) + "/" + action
}

// status says whether the person may sign in, in a word.
func (p PersonRow) status() string {
	switch {
	case p.Banned:
		return "banned"
	case p.Deactivated:
		return "deactivated"
	}
	return "active"
}

// seen is when the person was last seen: now while online.
func (p PersonRow) seen(now time.Time) string {
	switch {
	case p.Online > 0:
		return "online now"
	case p.LastSeen.IsZero():
		return "never"
	}
	return ago(now, p.LastSeen)
}

// age is how long ago, in milliseconds as the list was read (now), the
// person was last seen, for admin.js to age the cell by as the page stays
// open; "" while online, or never seen.
func (p PersonRow) age(now time.Time) string {
	if p.Online > 0 || p.LastSeen.IsZero() {
		return ""
	}
	return strconv.FormatInt(max(0, now.Sub(p.LastSeen).Milliseconds()), 10)
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func auditTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}
