package views

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestShortAgentCutsAtACharacterBoundary(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"", "—"},
		{"curl/8.5.0", "curl/8.5.0"},
		{strings.Repeat("a", 59) + "ééé", strings.Repeat("a", 59) + "…"}, // byte 60 is inside é
		{strings.Repeat("€", 30), strings.Repeat("€", 20) + "…"},
	}
	for _, tt := range tests {
		got := shortAgent(tt.ua)
		if !utf8.ValidString(got) || got != tt.want {
			t.Errorf("shortAgent(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestAgoWords(t *testing.T) {
	now := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0:                   "just now",
		59 * time.Second:    "just now",
		time.Minute:         "1 minute ago",
		59 * time.Minute:    "59 minutes ago",
		time.Hour:           "1 hour ago",
		23 * time.Hour:      "23 hours ago",
		24 * time.Hour:      "1 day ago",
		29 * 24 * time.Hour: "29 days ago",
		30 * 24 * time.Hour: "on 2026-11-07",
		-5 * time.Minute:    "just now", // a clock a little ahead
	} {
		if got := agoWords(now, now.Add(-d)); got != want {
			t.Errorf("agoWords(%v before) = %q, want %q", d, got, want)
		}
	}
}
