package views

import (
	"strconv"
	"time"

	"nochat/db"
)

// Webhooks is the dashboard's list of incoming webhooks, the rooms one
// may be made for, and one just made.
type Webhooks struct {
	Items []db.Webhook // oldest first
	Rooms []db.Room    // every room, to name the webhooks' rooms
	Taken time.Time    // when it was read
	New   NewWebhook   // a webhook just made, its URL shown this once
}

// NewWebhook is a webhook just made: its URL and ready-to-paste curl
// lines, shown once to whoever made it.
type NewWebhook struct {
	Name     string
	Room     string
	URL      string
	Curl     string // plain text
	CurlJSON string // Slack's JSON
}

// open are the rooms a webhook may be made for: not direct, not archived.
func (ws Webhooks) open() []db.Room {
	var out []db.Room
	for _, r := range ws.Rooms {
		if r.Kind != db.KindDirect && !r.IsArchived() {
			out = append(out, r)
		}
	}
	return out
}

// roomOf is the slug of webhook h's room.
func (ws Webhooks) roomOf(h db.Webhook) string {
	for _, r := range ws.Rooms {
		if r.ID == h.Room {
			return r.Slug
		}
	}
	return "room " + strconv.FormatInt(h.Room, 10)
}

func webhookDeleteURL(h db.Webhook) string {
	return "/admin/webhooks/" + strconv.FormatInt(h.ID, 10) + "/delete"
}

// hookUsed is when webhook h last posted.
func hookUsed(now time.Time, h db.Webhook) string {
	if h.LastUsed.IsZero() {
		return "never"
	}
	return ago(now, h.LastUsed)
}
