package outhook

import (
	"slices"
	"testing"
)

func TestParseAllow(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"127.0.0.1:9000, ha.lan", []string{"127.0.0.1:9000", "ha.lan"}, true},
		{"[::1]:8080,::1", []string{"[::1]:8080", "::1"}, true},
		{"ha.lan:0", nil, false},
		{"ha.lan:99999", nil, false},
		{"http://ha.lan", nil, false},
		{"user@ha.lan", nil, false},
		{":9000", nil, false},
	} {
		got, err := ParseAllow(tt.in)
		if (err == nil) != tt.ok || tt.ok && !slices.Equal(got, tt.want) {
			t.Errorf("ParseAllow(%q) = %q, %v; want %q (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestAllowedNames(t *testing.T) {
	g := NewGuard([]string{"HA.lan", "127.0.0.1:9000"}, nil)
	for _, tt := range []struct {
		host, port string
		want       bool
	}{
		{"ha.lan", "80", true},
		{"ha.lan.", "8123", true},
		{"127.0.0.1", "9000", true},
		{"127.0.0.1", "9001", false},
		{"other.lan", "80", false},
	} {
		if got := g.allowed(tt.host, tt.port); got != tt.want {
			t.Errorf("allowed(%s, %s) = %v", tt.host, tt.port, got)
		}
	}
}
