package main

import (
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// The markup renders in the page, for history and for a live message
// alike, and no payload runs: no script element, no event handler, no
// javascript: link; every link opens a new tab without a referrer.
func TestBrowserMarkupRendersAndNothingRuns(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "1000"})
	payloads := []string{
		"<script>window.pwned = 1</script>",
		"<img src=x onerror=\"window.pwned = 2\">",
		"[x](javascript:window.pwned=3)",
		"*<svg onload=\"window.pwned = 4\">*",
		"`</code><script>window.pwned = 5</script>`",
		"```\n</code></pre><img src=x onerror=\"window.pwned = 6\">\n```",
		"> <iframe src=\"javascript:window.pwned = 7\"></iframe>",
		"http://example.org/\"onmouseover=\"window.pwned=8",
	}
	for _, p := range payloads {
		s.post(t, "mallory", p)
	}
	s.post(t, "ann", "*bold* _italic_ `code` see https://example.org")
	tab := newTab(t, browser)
	do(t, tab, chromedp.Navigate(s.url+"/"))
	connected(t, tab)
	// And one more, live.
	s.post(t, "ann", "live: **strong** and www.example.org")
	waitPage(t, tab, "the live message rendered", `!!document.querySelector('#messages li.msg:last-child .text strong')`)

	if got := eval[string](t, tab, `(() => {
		const list = document.getElementById('messages');
		if (window.pwned) return 'ran payload ' + window.pwned;
		if (list.querySelector('script, img, svg, iframe, style, form')) return 'an element that should be text: ' + list.querySelector('script, img, svg, iframe, style, form').outerHTML;
		for (const el of list.querySelectorAll('*')) {
			for (const a of el.attributes) if (a.name.startsWith('on')) return 'handler ' + a.name + ' on ' + el.tagName;
		}
		for (const a of list.querySelectorAll('.text a')) {
			if (!/^https?:\/\//.test(a.getAttribute('href'))) return 'link to ' + a.getAttribute('href');
			if (a.target !== '_blank' || a.rel !== 'nofollow noreferrer noopener') return 'link without new tab and rel: ' + a.outerHTML;
		}
		return '';
	})()`); got != "" {
		t.Fatal(got)
	}
	// The payloads are shown as text: a reader sees what was sent.
	texts := waitMessages(t, tab, "the payloads as text", contains("<script>window.pwned = 1</script>"))
	if len(texts) != len(payloads)+2 {
		t.Fatalf("%d messages on the page, want %d", len(texts), len(payloads)+2)
	}
	got := eval[[]string](t, tab, `Array.from(document.querySelectorAll('#messages li.msg .text')).slice(-2).map(e => e.innerHTML.trim())`)
	want := []string{
		`<p><strong>bold</strong> <em>italic</em> <code>code</code> see <a href="https://example.org" rel="nofollow noreferrer noopener" target="_blank">https://example.org</a></p>`,
		`<p>live: <strong>strong</strong> and <a href="http://www.example.org" rel="nofollow noreferrer noopener" target="_blank">www.example.org</a></p>`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d shows\n %s\nwant\n %s", i, got[i], want[i])
		}
	}
	screenshots(t, tab, "markup")
}
