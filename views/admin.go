package views

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"nochat/chat"
	"nochat/db"
)

// AdminAssets are the URLs the admin pages load.
type AdminAssets struct {
	CSS   string
	Htmx  string
	Admin string // admin.js: pauses the live part, asks before actions
	Icon  string
}

// Dashboard is everything the admin dashboard shows.
type Dashboard struct {
	Room       chat.Snapshot
	Stored     int64 // messages in the database
	Pruned     int64 // messages removed by retention since start
	DBSize     int64 // bytes on disk, WAL included
	Memory     uint64
	Goroutines int
	Version    string
	Messages   MessageList
	Audit      []db.AuditEntry    // the newest admin actions, newest first
	Bans       []db.AddressBan    // the newest refused addresses, newest first
	Banned     int                // refused addresses in all
	Viewer     string             // the admin's own address (chat.AddressKey), never banned
	Done       string             // what the last people action did, said once
	Refused    map[string]Refused // by a ban's address: what this node refused since it started
	Rooms      []RoomRow          // every room, archived ones too: the default first, then by name
	Cluster    *ClusterView       // nil on a single node
	Nodes      []chat.NodeView    // the cluster's other nodes, by name; nil on a single node
}

// ClusterView is a cluster as the dashboard shows it, from this node.
type ClusterView struct {
	Node        string // this node
	Leader      string // the stream's leader, "" when there is none
	Nodes       int    // the stream's replicas
	Current     int    // of which up to date with the leader
	Last        int64  // the stream's last entry
	Applied     int64  // how far this node's database has applied it
	Unreachable string // why the cluster did not answer, "" when it did
}

// clusterNote is the note under the dashboard's cluster tile: the leader,
// the replicas, the log, and how far behind this node is.
func (c ClusterView) clusterNote() string {
	switch c.Unreachable {
	case "":
	case context.DeadlineExceeded.Error():
		return "no answer from the cluster within half a second: this node may be cut off from the others"
	default:
		return "no answer from the cluster: this node may be cut off from the others (" + c.Unreachable + ")"
	}
	behind := ""
	if c.Applied < c.Last {
		behind = " · " + count(c.Last-c.Applied) + " behind"
	}
	return "leader " + c.Leader + " · " + num(c.Current) + " of " + num(c.Nodes) + " replicas current · log at " + count(c.Last) + behind
}

// RoomRow is one room as the dashboard lists it: what it is, who is in it
// and how busy it is, never what is said in it (an admin does not read a
// private or direct room they are not in: SECURITY.md).
type RoomRow struct {
	db.Room
	Members  []db.Member // by name
	Online   int         // connections that see it now
	Messages int64
	Last     int64 // Unix milliseconds of its newest message, 0 if none
}

// Title is the room's name, or for a direct room its people's names.
func (r RoomRow) Title() string {
	if r.Kind != db.KindDirect || r.Name != "" {
		return r.Name
	}
	names := make([]string, 0, len(r.Members))
	for _, m := range r.Members {
		names = append(names, m.User)
	}
	if len(names) == 0 {
		return "(nobody)"
	}
	return strings.Join(names, ", ")
}

func (r RoomRow) url(action string) string {
	return "/admin/rooms/" + strconv.FormatInt(r.ID, 10) + "/" + action
}

func (r RoomRow) removeURL(m db.Member) string {
	return r.url("members/" + strconv.FormatInt(m.UserID, 10) + "/remove")
}

// membersID names the room's member list, so that admin.js keeps it open
// across refreshes.
func (r RoomRow) membersID() string { return "room-members-" + strconv.FormatInt(r.ID, 10) }

// isDefault reports whether the room is the default one, which cannot be
// archived nor left.
func (r RoomRow) isDefault() bool { return r.ID == db.DefaultRoom }

// lastActivity is when the room's newest message came, or "never".
func (r RoomRow) lastActivity(now time.Time) string {
	if r.Last == 0 {
		return "never"
	}
	return ago(now, time.UnixMilli(r.Last))
}

// connRoomsShown is how many of a connection's rooms the list names.
const connRoomsShown = 3

// connRooms names the rooms a connection sees: all of them when they are
// few, else how many and the first few; full is every name, for the title.
func connRooms(titles map[int64]string, c chat.Connection) (short, full string) {
	names := make([]string, 0, len(c.Rooms))
	for _, id := range c.Rooms {
		t, ok := titles[id]
		if !ok {
			t = "#" + strconv.FormatInt(id, 10)
		}
		names = append(names, t)
	}
	full = strings.Join(names, ", ")
	switch {
	case len(names) == 0:
		return "none", ""
	case len(names) <= connRoomsShown:
		return full, full
	}
	return num(len(names)) + " rooms: " + strings.Join(names[:connRoomsShown], ", ") + ", …", full
}

// roomTitles is every room's title by id, for the connection list.
func (d Dashboard) roomTitles() map[int64]string {
	titles := make(map[int64]string, len(d.Rooms))
	for _, r := range d.Rooms {
		titles[r.ID] = r.Title()
		if r.Kind == db.KindDirect {
			titles[r.ID] = "direct: " + r.Title() // people's names alone read as people
		}
	}
	return titles
}

// MaxFilter is how many characters the message list's filter may have: the
// filter field's maxlength, and where the dashboard refuses a longer one.
const MaxFilter = 100

// MessageList is one page of the dashboard's message list and how it was
// asked for. A page is bounded by ids, not positions, so new messages never
// shift what a page holds.
type MessageList struct {
	Filter string       // shown are messages whose text or user contains it
	Before int64        // the page is the newest below this id (0: none)
	After  int64        // the page is the oldest above this id (0: none)
	Items  []db.Message // newest first
	Older  bool         // more matches below the page
	Newer  bool         // more matches above the page
	Kept   bool         // not read: the browser keeps the list it shows
}

// query is the list's place as URL parameters, "" for the newest page
// without a filter, so that actions and refreshes keep the admin where
// they were.
func (l MessageList) query() string {
	v := url.Values{}
	if l.Filter != "" {
		v.Set("q", l.Filter)
	}
	switch {
	case l.After > 0:
		v.Set("after", strconv.FormatInt(l.After, 10))
	case l.Before > 0:
		v.Set("before", strconv.FormatInt(l.Before, 10))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// URL is the dashboard at the list's current page and filter.
func (l MessageList) URL() string { return "/admin" + l.query() }

func (l MessageList) with(before, after int64) string {
	return "/admin" + MessageList{Filter: l.Filter, Before: before, After: after}.query()
}

func (l MessageList) olderURL() string  { return l.with(l.Items[len(l.Items)-1].ID, 0) }
func (l MessageList) newerURL() string  { return l.with(0, l.Items[0].ID) }
func (l MessageList) newestURL() string { return l.with(0, 0) }
func (l MessageList) liveURL() string   { return "/admin/live" + l.query() }

// span names the page's ids, newest first: "#46 – #27".
func (l MessageList) span() string {
	newest, oldest := dataID(l.Items[0]), dataID(l.Items[len(l.Items)-1])
	if newest == oldest {
		return "#" + newest
	}
	return "#" + newest + " – #" + oldest + ", newest first"
}

func (l MessageList) paged() bool { return l.Before > 0 || l.After > 0 }

func (l MessageList) deleteURL(m db.Message) string {
	return "/admin/messages/" + dataID(m) + "/delete" + l.query()
}

func (d Dashboard) messagesLastMinute() int64 { return chat.Sum(d.Room.Series.Messages, 1) }
func (d Dashboard) messagesLastHour() int64   { return chat.Sum(d.Room.Series.Messages, 60) }
func (d Dashboard) errorsLastHour() int64     { return chat.Sum(d.Room.Series.Errors, 60) }

func (d Dashboard) uptime() string { return duration(d.Room.Taken.Sub(d.Room.Started)) }

// disconnectURL is where the dashboard disconnects c: a session of this
// node (node "") or of another.
func (d Dashboard) disconnectURL(node string, c chat.Connection) string {
	if node == "" {
		return "/admin/sessions/" + url.PathEscape(c.ID) + "/disconnect" + d.Messages.query()
	}
	return "/admin/nodes/" + url.PathEscape(node) + "/sessions/" + url.PathEscape(c.ID) + "/disconnect" + d.Messages.query()
}

// disconnectDetail says whom a disconnect concerns, and where.
func disconnectDetail(node string, c chat.Connection) string {
	s := c.User + " from " + c.Remote
	if node != "" {
		s += ", on " + node
	}
	// What a disconnect does, and does not: a page opens its socket again.
	return s + ". Its page says so and connects again by itself; to keep someone out, ban them."
}

// mayBan reports whether the dashboard offers to ban c's address: a
// guest's, unless it is the admin's own or this machine's (the server
// refuses both).
func (d Dashboard) mayBan(c chat.Connection) bool {
	a, err := netip.ParseAddr(c.Remote)
	return c.UserID == 0 && err == nil && !a.IsLoopback() && !a.Unmap().IsLoopback() && chat.AddressKey(c.Remote) != d.Viewer
}

// banDetail says what banning a guest's address does, naming the others
// whose pages from the same address (people, a node's) close with it: a
// family's or a club's router is one address for everyone behind it.
func banDetail(people []chat.Person, c chat.Connection, cluster bool) string {
	key := chat.AddressKey(c.Remote)
	var others []string
	n := 0
	for _, p := range people {
		for _, o := range p.Connections {
			if o.ID == c.ID || chat.AddressKey(o.Remote) != key {
				continue
			}
			n++
			if !slices.Contains(others, p.User) {
				others = append(others, p.User)
			}
		}
	}
	s := "Every page, sign-in and message from " + key + " is refused until you lift the ban, signed-in people's too. Closing now: the page of " + c.User
	if n > 0 {
		s += ", and " + plural(int64(n), "other page", "other pages") + " from the same address (" + strings.Join(others, ", ") + ")"
	}
	if cluster {
		s += ", and any from the same address on the other nodes"
	}
	return s + "."
}

// Refused is how often a banned address was refused, and when last.
type Refused struct {
	N    int64
	Last time.Time
}

// refusedText says how often a banned address was refused here.
func (d Dashboard) refusedText(address string) string {
	r, ok := d.Refused[address]
	if !ok {
		return "none since this node started"
	}
	return plural(r.N, "time", "times") + ", last " + ago(d.Room.Taken, r.Last)
}

// banWho is whom a refused address was banned for.
func banWho(b db.AddressBan) string {
	switch {
	case b.AccountID != 0:
		return b.Name + "'s ban"
	case b.Name != "":
		return b.Name + " (a guest)"
	}
	return "an address"
}

// liftDetail says what lifting a ban on an address does.
func liftDetail(b db.AddressBan) string {
	s := "Pages and messages from " + b.Address + " are served again."
	if b.AccountID != 0 {
		s += " " + b.Name + "'s account stays banned, and any other address of its ban stays refused."
	}
	return s
}

// nodeNote is another node's totals, under its name.
func nodeNote(n chat.NodeView) string {
	return plural(int64(n.Online), "connection", "connections") + " (peak " + num(n.Peak) + ") · " +
		plural(n.MessagesLastHour, "message", "messages") + " and " + plural(n.ErrorsLastHour, "error", "errors") + " in the last hour · up " + duration(n.Taken.Sub(n.Started))
}

// duration writes a span the way people say it: 3d 4h, 2h 5m, 4m 10s, 12s.
func duration(d time.Duration) string {
	d = d.Round(time.Second)
	days, hours := int(d.Hours())/24, int(d.Hours())%24
	mins, secs := int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm %ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if d := now.Sub(t); d > time.Second {
		return duration(d) + " ago"
	}
	return "now"
}

// bytes writes a size in binary units: 512 B, 3.2 KiB, 41.0 MiB.
func bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	b.WriteString(s[:pre])
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func num(n int) string { return count(int64(n)) }

func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") }

func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

func shortAgent(ua string) string {
	if ua == "" {
		return "—"
	}
	return chat.Cut(ua, 60)
}

// shortID is the start of a session id, enough to tell sessions apart at a
// glance; the dashboard's actions carry the whole id.
func shortID(id string) string { return id[:min(8, len(id))] }

// Chart geometry: one bar a minute over the last hour.
const (
	chartW   = 240.0
	chartH   = 48.0
	barWidth = chartW / 60
)

type bar struct {
	X, Y, W, H string
	Title      string
}

// bars scales a series to the chart: the tallest bar fills it. Minutes
// without events get no bar.
func bars(points []int64, what string, now time.Time) []bar {
	top := max(1, peakOf(points))
	out := make([]bar, 0, len(points))
	for i, p := range points {
		if p == 0 {
			continue
		}
		h := max(1.5, float64(p)/float64(top)*chartH)
		minute := now.Add(-time.Duration(len(points)-1-i) * time.Minute).UTC().Format("15:04")
		out = append(out, bar{
			X:     ff(float64(i) * barWidth),
			Y:     ff(chartH - h),
			W:     ff(barWidth - 0.8),
			H:     ff(h),
			Title: fmt.Sprintf("%s UTC: %d %s", minute, p, what),
		})
	}
	return out
}

func peakOf(points []int64) int64 {
	var top int64
	for _, p := range points {
		top = max(top, p)
	}
	return top
}

func ff(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// personRole is the tag beside a person in the connection list: their
// role, or "guest".
func personRole(p chat.Person) string {
	if p.Guest() || p.Role == "" {
		return "guest"
	}
	return p.Role
}

// personDevices says how many connections a person has open: devices for
// an account, connections for a guest name, which two guests may share.
func personDevices(p chat.Person) string {
	n := len(p.Connections)
	switch {
	case p.Guest() && n == 1:
		return "1 connection"
	case p.Guest():
		return num(n) + " connections"
	case n == 1:
		return "1 device"
	}
	return num(n) + " devices"
}

// listedText is a message as the dashboard's list shows it: its text, or,
// for a file sent without one, the file's name (a picture's said so).
func listedText(m db.Message) string {
	switch {
	case m.Message != "" || m.File == nil:
		return m.Message
	case m.File.Image() || strings.HasPrefix(m.File.Type, "image/"):
		return "🖼 picture: " + m.File.Name
	default:
		return "📎 file: " + m.File.Name
	}
}
