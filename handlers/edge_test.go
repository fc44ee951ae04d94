package handlers_test

import (
	"testing"

	"nochat/handlers"
)

func TestHostsAllowed(t *testing.T) {
	tests := []struct {
		hostname string
		allow    []string
		host     string
		want     bool
	}{
		{"pi", nil, "127.0.0.1:8080", true},
		{"pi", nil, "192.168.1.20", true},
		{"pi", nil, "[::1]:8080", true},
		{"pi", nil, "[fe80::1]", true},
		{"pi", nil, "localhost:8080", true},
		{"pi", nil, "LocalHost.", true},
		{"pi", nil, "pi:8080", true},
		{"pi", nil, "pi.local:8080", true},
		{"pi", nil, "PI.Local.", true},
		{"pi.lan", nil, "pi.lan:8080", true},
		{"pi.lan", nil, "pi", true},
		{"pi.lan", nil, "pi.local", true},
		{"pi", []string{"chat.example.org"}, "chat.example.org", true},
		{"pi", []string{"chat.example.org"}, "Chat.Example.Org.:443", true},
		{"pi", []string{"*"}, "anything.example:1", true},
		{"pi", nil, "", true}, // HTTP/1.0 without Host: no browser
		{"pi", nil, "attacker.example:8080", false},
		{"pi", nil, "localhost.attacker.example", false},
		{"pi", nil, "pi.local.attacker.example", false},
		{"pi", nil, "127.0.0.1.nip.io", false},
		{"pi", nil, "pi.localhost.example", false},
		{"pi", nil, "pix", false},
		{"pi", []string{"chat.example.org"}, "chat.example.org.attacker.example", false},
		{"pi", []string{"chat.example.org"}, "example.org", false},
		{"", nil, "local", false},
		{"", nil, ".local", false},
	}
	for _, tt := range tests {
		if got := handlers.NewHosts(tt.hostname, tt.allow).Allowed(tt.host); got != tt.want {
			t.Errorf("hostname %q, -allow-host %q: Allowed(%q) = %v, want %v", tt.hostname, tt.allow, tt.host, got, tt.want)
		}
	}
}
