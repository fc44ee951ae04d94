// Package views holds the HTML of NoChat as templ components. Every component
// is a pure function of its parameters: no database, no HTTP, no clock.
package views

import (
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"nochat/db"
)

// Page carries what every page needs besides its content.
type Page struct {
	Title   string
	CSSURL  string // e.g. "/static/style.css?v=abc"
	JSURL   string // e.g. "/static/app.js?v=abc"
	IconURL string // "/static/favicon.svg?v=..."
	// AppIconURL is the installed app's icon, for browsers that take it
	// from the page rather than the manifest (Safari).
	AppIconURL string // "/static/icon-192.png?v=..."
	Admin      bool   // the reader is a logged-in admin: offer to delete messages
	User       string // the signed-in reader's account name; "" for a guest
	UserID     int64  // the signed-in reader's account; 0 for a guest
	// SessionEnds is when the reader's sign-in runs out (Unix ms; 0 for a
	// guest): the service worker shows no kept copy of the page past it.
	SessionEnds int64
	SignIn      bool // NoChat has sign-in: offer it to guests, sign-out to others
	// GuestsMay is whether guests may use the chat at all: only then is
	// letting them into a room offered.
	GuestsMay bool
	// GuestsPost is whether guests may post too (-guests on), which a new
	// NoChat's admin is told of in the empty lobby.
	GuestsPost bool
}

// Chat is what the chat page shows besides what every page has.
type Chat struct {
	Messages []db.Message // the newest, oldest first, up to one history page
	HasOlder bool         // older messages exist: offer "Load older messages"
	PageSize int          // messages per history request, for app.js's own
	// The limits the server enforces, which the composer checks first.
	MaxMessage int   // characters in a message
	MaxName    int   // characters in a name
	MaxUpload  int64 // bytes in an uploaded file
	// EditWindow is how long after sending one may edit a message.
	EditWindow time.Duration

	Room  RoomHead   // the room shown
	Rooms []RoomLink // the sidebar: the reader's rooms, then open ones to join
	// LatestID is the newest message of any room when the page was made:
	// its socket resumes after it.
	LatestID int64
	// Focus is the message a permalink (/r/{slug}/{id}) opened: Messages
	// are the history around it, shown scrolled to it and highlighted;
	// 0 for the room's newest page.
	Focus int64
	// HasNewer is whether newer messages than Messages exist (a permalink
	// to an older message): offer to jump to the newest.
	HasNewer bool
}

// RoomHead is the room a chat page shows, and what its reader may do there.
type RoomHead struct {
	ID      int64
	Slug    string
	Title   string // its name, or a direct room's other people
	Topic   string
	Kind    string // "open", "private" or "direct"
	Member  bool
	MayPost bool
	Manage  bool // rename, archive: an admin or its creator
	Invite  bool
	// Archived: read-only, shown to whoever may still see it (its
	// members, admins); Post is who may post (db.PostEveryone, ...).
	Archived bool
	Post     string
	// LastRead is the newest message its reader has read there: the page
	// marks what follows as new. 0 for a guest.
	LastRead int64
}

// RoomLink is one room in the sidebar.
type RoomLink struct {
	ID       int64
	Slug     string
	Title    string
	Kind     string
	Member   bool // one of the reader's rooms; else an open room to join
	Unread   int
	Mention  bool
	LastRead int64
	// Notify is the reader's notification level there (all, mentions,
	// none); "" when not a member.
	Notify string
}

// roomMark is the sign before a room's name: # for a room, a padlock for
// a private one (drawn by CSS), @ for a direct conversation.
func roomMark(kind string) string {
	switch kind {
	case "private":
		return "" // a padlock, drawn by CSS (.room-mark[data-kind=private])
	case "direct":
		return "@"
	}
	return "#"
}

// unreadWords is what a reader hears of a room's unread count, after
// its name; nothing for none.
func unreadWords(n int) string {
	if n == 0 {
		return ""
	}
	return ", " + strconv.Itoa(n) + " unread"
}

// unreadText is an unread count as the list shows it: 99+ past 99.
func unreadText(n int) string {
	if n > 99 {
		return "99+"
	}
	return strconv.Itoa(n)
}

// userColors is the number of person colours in style.css (.c0 … .c7),
// for names and avatars; app.js picks the same one (see colorOf).
const userColors = 8

func pageTitle(p Page) string {
	if p.Title == "" {
		return "NoChat"
	}
	return p.Title
}

func msgID(m db.Message) string { return "m-" + strconv.FormatInt(m.ID, 10) }

func dataID(m db.Message) string { return strconv.FormatInt(m.ID, 10) }

// permalink is the page address that opens m in its room (slug), as
// app.js's permalinkOf makes it.
func permalink(slug string, m db.Message) templ.SafeURL {
	return templ.SafeURL("/r/" + url.PathEscape(slug) + "/" + strconv.FormatInt(m.ID, 10))
}

// The page renders times in UTC so that it stays a pure function of its
// input; app.js rewrites them to the reader's local time on load.

func isoTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func clockTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }

func fullTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC") }

// agoWords is how long before now t was, as a person says it: "just now",
// "5 minutes ago", "3 hours ago", "2 days ago"; from 30 days on, the date.
func agoWords(now, t time.Time) string {
	d := now.Sub(t)
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one + " ago"
		}
		return strconv.Itoa(n) + " " + one + "s ago"
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return unit(int(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return unit(int(d/time.Hour), "hour")
	case d < 30*24*time.Hour:
		return unit(int(d/(24*time.Hour)), "day")
	}
	return "on " + t.UTC().Format("2006-01-02")
}

// nameHash is FNV-1a over a name's UTF-8 bytes, as app.js computes it, so
// that server- and client-rendered colours agree.
func nameHash(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

// signOutLabel names a session's Sign out button for those who hear it:
// which device, since every row's button reads the same.
func signOutLabel(s db.Session, current int64) string {
	if s.ID == current {
		return "Sign out this device (" + deviceName(s.UserAgent) + ")"
	}
	return "Sign out " + deviceName(s.UserAgent) + ", last seen " + s.LastSeen.UTC().Format("2006-01-02 15:04") + " UTC"
}

// deviceName is a session's user agent as a person names the device: the
// browser and the system, when the agent says them plainly.
func deviceName(ua string) string {
	browser := ""
	for _, b := range []struct{ token, name string }{{"Edg/", "Edge"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Safari/", "Safari"}, {"curl/", "curl"}} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "" || system != "":
		return browser + system
	case ua == "":
		return "An unnamed device"
	}
	return ua
}

// QuickReactions are the reactions offered at one tap.
var QuickReactions = []string{"👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"}

// joinIDs is ids as a data attribute: "1,5,7".
func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// reactedBy is who reacted, as a reaction's title says it: "Ann, Bob".
func reactedBy(r db.Reaction) string {
	return strings.Join(r.Users, ", ")
}
