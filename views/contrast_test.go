package views

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestPersonColoursContrast checks the people's colours of both
// stylesheets, light and dark: an avatar's initials on its colour (a
// member's), and the colour on the page's backgrounds (a name, a guest's
// hollow avatar), each at least 4.5:1, WCAG's bar for text.
func TestPersonColoursContrast(t *testing.T) {
	for _, file := range []string{"../static/style.css", "../static/admin.css"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		css := string(b)
		dark := strings.Index(css, "@media (prefers-color-scheme: dark)")
		if dark < 0 {
			t.Fatalf("%s: no dark theme", file)
		}
		for theme, block := range map[string]string{"light": css[:dark], "dark": css[dark:]} {
			vars := cssVars(block)
			ink := vars["--on-avatar"]
			if ink == "" {
				t.Fatalf("%s (%s): no --on-avatar", file, theme)
			}
			for i := range userColors {
				c := vars["--c"+strconv.Itoa(i)]
				if c == "" {
					t.Fatalf("%s (%s): no --c%d", file, theme, i)
				}
				if r := contrast(c, ink); r < 4.5 {
					t.Errorf("%s (%s): initials %s on --c%d %s: %.2f:1, want 4.5:1", file, theme, ink, i, c, r)
				}
				for _, bg := range []string{"--bg", "--surface", "--bubble"} {
					if vars[bg] == "" {
						continue
					}
					if r := contrast(c, vars[bg]); r < 4.5 {
						t.Errorf("%s (%s): --c%d %s on %s %s: %.2f:1, want 4.5:1", file, theme, i, c, bg, vars[bg], r)
					}
				}
			}
		}
	}
}

var cssVar = regexp.MustCompile(`(--[a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\b`)

// cssVars are the first value of each custom property in css that is a
// six-digit colour.
func cssVars(css string) map[string]string {
	vars := map[string]string{}
	for _, m := range cssVar.FindAllStringSubmatch(css, -1) {
		if _, ok := vars[m[1]]; !ok {
			vars[m[1]] = m[2]
		}
	}
	return vars
}

// contrast is WCAG 2's contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	v, _ := strconv.ParseUint(hex[1:], 16, 32)
	channel := func(c uint64) float64 {
		s := float64(c) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*channel(v>>16&0xff) + 0.7152*channel(v>>8&0xff) + 0.0722*channel(v&0xff)
}
