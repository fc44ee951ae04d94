package views

import (
	"strings"
	"testing"
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
