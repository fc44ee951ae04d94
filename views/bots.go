package views

import (
	"strconv"
	"strings"
	"time"

	"nochat/db"
	"nochat/outhook"
)

// Bots is the dashboard's list of bots, the rooms they may be granted,
// and a token just made.
type Bots struct {
	Items []db.Bot  // oldest first
	Rooms []db.Room // the rooms a bot may be granted: not direct ones, not archived
	Taken time.Time // when it was read
	Token BotToken  // a token just made, shown this once
}

// BotToken is a bot's token, or its webhook's secret, or both, shown once
// to the admin who made them.
type BotToken struct {
	Name   string
	Token  string
	Secret string // its outgoing webhook's signing secret
}

// webhookShown is a bot's webhook as the list shows it: the scheme and
// host (its path may hold a secret of the receiver's).
func webhookShown(b db.Bot) string {
	if b.Webhook == "" {
		return "none"
	}
	return outhook.Host(b.Webhook)
}

func botURL(b db.Bot, action string) string {
	return "/admin/bots/" + strconv.FormatInt(b.ID, 10) + "/" + action
}

// roomNames are the slugs of a bot's rooms, as the list shows them.
func (bs Bots) roomNames(b db.Bot) string {
	var names []string
	for _, id := range b.Rooms {
		for _, r := range bs.Rooms {
			if r.ID == id {
				names = append(names, r.Slug)
			}
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func hasRoom(b db.Bot, id int64) bool {
	for _, r := range b.Rooms {
		if r == id {
			return true
		}
	}
	return false
}

// used is when the bot last used its token.
func used(now time.Time, b db.Bot) string {
	if b.LastUsed.IsZero() {
		return "never"
	}
	return ago(now, b.LastUsed)
}

func tokenShown(b db.Bot) string {
	if !b.HasToken {
		return "revoked"
	}
	return b.Prefix + "…"
}
