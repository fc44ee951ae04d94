package main

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// helpFlag is one flag as `nochat -h` lists it.
type helpFlag struct {
	name, env, def string
	hasDefault     bool // -h shows no default for a zero value ("", 0, false)
	isBool         bool
}

// helpFlags runs `nochat -h` with the given environment and parses the flags
// it lists, in order.
func helpFlags(t *testing.T, env map[string]string) []helpFlag {
	t.Helper()
	var out strings.Builder
	if err := run(context.Background(), []string{"nochat", "-h"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatalf("nochat -h: %v", err)
	}
	// flag.PrintDefaults: "  -name [type]" then the usage, indented by
	// four spaces and a tab, ending in "(default ...)" unless zero.
	head := regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	envRe := regexp.MustCompile(`\((NOCHAT_[A-Z0-9_]+)\)`)
	defRe := regexp.MustCompile(`\(default (.*)\)$`)
	var flags []helpFlag
	for _, line := range strings.Split(out.String(), "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			flags = append(flags, helpFlag{name: m[1], isBool: m[2] == ""})
			continue
		}
		if len(flags) == 0 || !strings.HasPrefix(line, "    \t") {
			continue
		}
		f := &flags[len(flags)-1]
		if m := envRe.FindStringSubmatch(line); m != nil {
			f.env = m[1]
		}
		if m := defRe.FindStringSubmatch(line); m != nil {
			f.def, f.hasDefault = m[1], true
			if s, err := strconv.Unquote(m[1]); err == nil {
				f.def = s
			}
		}
	}
	if len(flags) == 0 {
		t.Fatalf("no flags in nochat -h:\n%s", out.String())
	}
	return flags
}

// readmeRow is one row of the README's configuration table.
type readmeRow struct{ flag, env, def string }

// readmeConfig parses the README table whose header is
// | flag | environment | default | meaning |.
func readmeConfig(t *testing.T) []readmeRow {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []readmeRow
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case len(cells) >= 4 && cells[0] == "flag" && cells[1] == "environment" && cells[2] == "default":
			in = true
		case !in:
		case !strings.HasPrefix(line, "|"):
			in = false
		case strings.HasPrefix(cells[0], "---"):
		default:
			rows = append(rows, readmeRow{flag: cells[0], env: cells[1], def: cells[2]})
		}
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no | flag | environment | default | meaning | table")
	}
	return rows
}

// code returns the text of the first `code span` in a cell, and whether
// there is one.
func code(cell string) (string, bool) {
	m := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(cell)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// TestReadmeConfigurationMatchesHelp keeps the README's configuration table
// and `nochat -h` in step: the same flags, each with its NOCHAT_* variable and
// the same default. It knows no flag by name, so a flag added later fails it
// until the README documents it.
func TestReadmeConfigurationMatchesHelp(t *testing.T) {
	flags := helpFlags(t, nil)
	rows := readmeConfig(t)

	var helpNames, readmeNames []string
	for _, f := range flags {
		helpNames = append(helpNames, "-"+f.name)
	}
	byFlag := map[string]readmeRow{}
	for _, r := range rows {
		name, _ := code(r.flag)
		readmeNames = append(readmeNames, name)
		byFlag[name] = r
	}
	slices.Sort(helpNames)
	slices.Sort(readmeNames)
	if !slices.Equal(helpNames, readmeNames) {
		t.Fatalf("nochat -h lists %v\nthe README's configuration table lists %v", helpNames, readmeNames)
	}

	for _, f := range flags {
		t.Run(f.name, func(t *testing.T) {
			row := byFlag["-"+f.name]
			wantEnv := "NOCHAT_" + strings.ToUpper(strings.ReplaceAll(f.name, "-", "_"))
			if f.env != wantEnv {
				t.Errorf("-h names the variable %q for -%s, want %q", f.env, f.name, wantEnv)
			}
			if env, _ := code(row.env); env != wantEnv {
				t.Errorf("README names the variable %q for -%s, want %q", env, f.name, wantEnv)
			}
			def, hasCode := code(row.def)
			switch {
			case f.hasDefault && def != f.def:
				t.Errorf("README default %q, -h says %q", row.def, f.def)
			case !f.hasDefault && hasCode && def != "" && def != `""` && def != "0" && def != "false":
				t.Errorf("README default %q, -h shows none (an empty or zero value): write it in words, or as `\"\"`, `0` or `false`", row.def)
			}

			// The variable really sets the flag: with it set, -h shows it
			// as the default.
			val := "7"
			if f.isBool {
				val = "true"
			}
			got := helpFlags(t, map[string]string{wantEnv: val})
			i := slices.IndexFunc(got, func(g helpFlag) bool { return g.name == f.name })
			switch {
			case i < 0:
				t.Errorf("with %s=%s, -h no longer lists -%s", wantEnv, val, f.name)
			case got[i].def != val:
				t.Errorf("with %s=%s, -h shows -%s's default as %q, want %q", wantEnv, val, f.name, got[i].def, val)
			}
		})
	}
}

func TestBooleanFlags(t *testing.T) {
	tests := []struct {
		name              string
		args              []string
		env               map[string]string
		metrics, trusting bool
		addr              string
		bad               string // part of the error, for a refused configuration
	}{
		{name: "defaults", metrics: true, addr: ":8080"},
		{name: "alone, before another flag", args: []string{"-trust-proxy", "-addr", ":9000"}, metrics: true, trusting: true, addr: ":9000"},
		{name: "last", args: []string{"-addr", ":9000", "-trust-proxy"}, metrics: true, trusting: true, addr: ":9000"},
		{name: "with =false", args: []string{"-metrics=false", "-trust-proxy=true"}, trusting: true, addr: ":8080"},
		{name: "from the environment", env: map[string]string{"NOCHAT_METRICS": "false", "NOCHAT_TRUST_PROXY": "true"}, trusting: true, addr: ":8080"},
		{name: "flag beats environment", args: []string{"-trust-proxy=false", "-metrics"}, env: map[string]string{"NOCHAT_METRICS": "0", "NOCHAT_TRUST_PROXY": "1"}, metrics: true, addr: ":8080"},
		{name: "bad environment value", env: map[string]string{"NOCHAT_TRUST_PROXY": "yes please"}, bad: "NOCHAT_TRUST_PROXY"},
		{name: "bad environment value, flag given", args: []string{"-trust-proxy"}, env: map[string]string{"NOCHAT_TRUST_PROXY": "yes please"}, metrics: true, trusting: true, addr: ":8080"},
		{name: "value after a space", args: []string{"-metrics", "false"}, bad: "-metrics=false"},
		{name: "bad value after =", args: []string{"-metrics=maybe"}, bad: "metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseCase(t, tt.args, tt.env, tt.bad)
			if !ok {
				return
			}
			if got.metrics != tt.metrics || got.trustProxy != tt.trusting || got.addr != tt.addr {
				t.Fatalf("metrics %v, trust-proxy %v, addr %q; want %v, %v, %q", got.metrics, got.trustProxy, got.addr, tt.metrics, tt.trusting, tt.addr)
			}
		})
	}
}

// Sizes are read as people write them; a bad one is a usage error.
func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"10MB": 10_000_000, "512kB": 512_000, "1GiB": 1 << 30, "300": 300, "2 mb": 2_000_000, "0": 0} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "10XB", "-1MB", "1.5MB", "99999999999999999999"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q): no error", in)
		}
	}
}

// -public-url is where people and bots reach NoChat behind a proxy: one
// address with no path, and its host is allowed as by -allow-host.
func TestPublicURLFlag(t *testing.T) {
	for _, tc := range []struct{ in, want, bad string }{
		{in: "https://chat.example.org", want: "https://chat.example.org/"},
		{in: "http://pi.local:8080/", want: "http://pi.local:8080/"},
		{in: "chat.example.org", bad: "-public-url"},
		{in: "ftp://chat.example.org", bad: "-public-url"},
		{in: "https://chat.example.org/nochat", bad: "no path"},
		{in: "https://user@chat.example.org", bad: "-public-url"},
		{in: "https://chat.example.org/?x=1", bad: "-public-url"},
	} {
		got, ok := parseCase(t, []string{"-public-url", tc.in}, nil, tc.bad)
		if !ok {
			continue
		}
		if got.publicURL != tc.want || !slices.Contains(got.allowHosts, "chat.example.org") && !slices.Contains(got.allowHosts, "pi.local") {
			t.Errorf("-public-url %s: %q, allowed hosts %q; want %q and its host allowed", tc.in, got.publicURL, got.allowHosts, tc.want)
		}
	}
}
