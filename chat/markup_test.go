package chat_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"nochat/chat"
)

// What each construct of the small markup becomes.
func TestRenderHTMLConstructs(t *testing.T) {
	link := func(href, text string) string {
		return `<a href="` + href + `" rel="nofollow noreferrer noopener" target="_blank">` + text + `</a>`
	}
	for _, tt := range []struct{ in, want string }{
		{"hello", "<p>hello</p>"},
		{"two\nlines", "<p>two<br>\nlines</p>"},
		{"*bold* and **bold**", "<p><strong>bold</strong> and <strong>bold</strong></p>"},
		{"_italic_", "<p><em>italic</em></p>"},
		{"*bold _and italic_*", "<p><strong>bold <em>and italic</em></strong></p>"},
		{"`code`", "<p><code>code</code></p>"},
		{"```\nfunc main() {}\n```", "<pre><code>func main() {}\n</code></pre>"},
		{"> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"},
		{"see https://example.org/a?b=1", "<p>see " + link("https://example.org/a?b=1", "https://example.org/a?b=1") + "</p>"},
		{"see http://example.org", "<p>see " + link("http://example.org", "http://example.org") + "</p>"},
		{"www.example.org", "<p>" + link("http://www.example.org", "www.example.org") + "</p>"},
		// What is not markup here stays text.
		{"# not a heading", "<p># not a heading</p>"},
		{"- not a list", "<p>- not a list</p>"},
		{"1. not a list", "<p>1. not a list</p>"},
		{"[text](https://example.org)", "<p>[text](" + link("https://example.org", "https://example.org") + ")</p>"},
		{"![img](https://example.org/a.png)", "<p>![img](" + link("https://example.org/a.png", "https://example.org/a.png") + ")</p>"},
		{"ann@example.org", "<p>ann@example.org</p>"},
		{"---", "<p>---</p>"},
		// What was typed is shown: backslashes, entities, indents.
		{`C:\Users\ann`, `<p>C:\Users\ann</p>`},
		{`\*not escaped\*`, `<p>\<strong>not escaped\</strong></p>`},
		{"&lt; &amp; &#60;", "<p>&amp;lt; &amp;amp; &amp;#60;</p>"},
		{"&#x3C; &#X3c; &copy; &frac34;", "<p>&amp;#x3C; &amp;#X3c; &amp;copy; &amp;frac34;</p>"},
		{"fish & chips && R&D &; &#; &#xz; &a b;", "<p>fish &amp; chips &amp;&amp; R&amp;D &amp;; &amp;#; &amp;#xz; &amp;a b;</p>"},
		// An address's ampersands are the address's: the link goes where
		// it was typed to, and reads as typed.
		{"https://www.youtube.com/watch?v=abc&t=42", "<p>" + link("https://www.youtube.com/watch?v=abc&amp;t=42", "https://www.youtube.com/watch?v=abc&amp;t=42") + "</p>"},
		{"https://example.com/?q=a&amp;b=c", "<p>" + link("https://example.com/?q=a&amp;amp;b=c", "https://example.com/?q=a&amp;amp;b=c") + "</p>"},
		{"see https://example.com/?q=&lt;x&y &lt;", "<p>see " + link("https://example.com/?q=&amp;lt;x&amp;y", "https://example.com/?q=&amp;lt;x&amp;y") + " &amp;lt;</p>"},
		{"recipe: https://example.org/r?i=tomatoes,beans&servings=4 & more", "<p>recipe: " + link("https://example.org/r?i=tomatoes,beans&amp;servings=4", "https://example.org/r?i=tomatoes,beans&amp;servings=4") + " &amp; more</p>"},
		{"    four spaces", "<p>\u00a0\u00a0\u00a0\u00a0four spaces</p>"},
		{"`&amp; \\`", "<p><code>&amp;amp; \\</code></p>"},
	} {
		if got := strings.TrimSpace(chat.RenderHTML(tt.in)); got != tt.want {
			t.Errorf("RenderHTML(%q)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// Quotes nest three deep; a deeper ">" is text. A message of a thousand
// ">" was a thousand nested blockquotes, 54 KB of HTML (110 KB a frame,
// JSON-escaped) for 2 KB stored, sent to every reader.
func TestRenderHTMLNestsQuotesThreeDeep(t *testing.T) {
	for _, tt := range []struct {
		in          string
		quotes      int
		shown, text string
	}{
		{"> > quoted twice", 2, "quoted twice", ""},
		{">>> three", 3, "three", ""},
		{"> > > > four", 3, "four", ">"},
		{strings.Repeat(">", 1990) + " x", 3, "x", strings.Repeat(">", 1987)},
		{strings.Repeat("> ", 995) + "x", 3, "x", ">"},
		// In code, quoted or not, a ">" is what was typed.
		{"> ```\n> >>>>>>> feature\n> ```", 1, ">>>>>>> feature", ""},
		{"```\n>>>>>>> feature\n```", 0, ">>>>>>> feature", ""},
	} {
		out := chat.RenderHTML(tt.in)
		text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(out, ""))
		if got := strings.Count(out, "<blockquote>"); got != tt.quotes || !strings.Contains(text, tt.shown) || !strings.Contains(text, tt.text) || strings.Contains(text, "&gt;") {
			t.Errorf("RenderHTML(%.20q…): %d quotes, text %.40q…; want %d quotes, %q and %q shown", tt.in, got, strings.TrimSpace(text), tt.quotes, tt.shown, tt.text)
		}
	}
}

// However the markup is piled up, a message's HTML stays within four
// times its text (escaped) and half a KiB: what would be larger (a wall of links) is
// shown as typed. Links among words stay links.
func TestRenderHTMLStaysNearTheTextsSize(t *testing.T) {
	for name, in := range map[string]string{
		"quotes":     strings.Repeat(">", 1990) + " x",
		"spaced":     strings.Repeat("> ", 995) + "x",
		"bare links": strings.Repeat("www.a.bc ", 222),
		"links":      strings.Repeat("http://a.b ", 180),
		"emphasis":   strings.Repeat("*_", 1000),
		"bold":       strings.Repeat("*a", 1000),
		"code spans": strings.Repeat("`a` ", 500),
		"everything": strings.Repeat("> *a* _b_ `c` http://x.y\n", 80),
		"entities":   strings.Repeat("&", 2000),
	} {
		// Escaping alone makes "&" five bytes: the bound is of the
		// escaped text.
		if out := chat.RenderHTML(in); len(out) > 4*len(html.EscapeString(in))+512 {
			t.Errorf("%s: %d bytes of HTML for %d typed", name, len(out), len(in))
		}
	}
	for _, in := range []string{
		"see www.example.org and https://example.org/a",
		"https://example.org/a/rather/long/path/to/a/page?with=a&query=string",
		strings.Repeat("a page worth reading: https://example.org/page\n", 20),
	} {
		if out := chat.RenderHTML(in); strings.Count(out, "<a ") != strings.Count(in, "example.org") {
			t.Errorf("RenderHTML(%.40q…) lost its links: %.200s", in, out)
		}
	}
}

// Every way to put script on the page is shown as text.
func TestRenderHTMLRefusesScript(t *testing.T) {
	for _, in := range []string{
		"<script>alert(1)</script>",
		"<img src=x onerror=alert(1)>",
		"<a href=\"javascript:alert(1)\">x</a>",
		"[x](javascript:alert(1))",
		"javascript:alert(1)",
		"JaVaScRiPt:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)",
		"http://example.org/\"onmouseover=\"alert(1)",
		"https://example.org/'><script>alert(1)</script>",
		"www.example.org/<svg/onload=alert(1)>",
		"*<img src=x onerror=alert(1)>*",
		"_<iframe src=javascript:alert(1)>_",
		"**`<script>`**",
		"`</code><script>alert(1)</script>`",
		"```\n</code></pre><script>alert(1)</script>\n```",
		"```html\n<script>alert(1)</script>\n```",
		"> <script>alert(1)</script>",
		"> > *<b onclick=alert(1)>x</b>*",
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"<style>body{display:none}</style>",
		"<form action=https://evil.example><button>go</button></form>",
		"<!-- comment --><?php ?>",
	} {
		out := chat.RenderHTML(in)
		if err := safeHTML(out); err != nil {
			t.Errorf("RenderHTML(%q) = %s: %v", in, out, err)
		}
	}
}

// allowed is each element the renderer may make, with the attributes it
// may carry.
var allowed = map[string][]string{
	"p": nil, "br": nil, "strong": nil, "em": nil, "code": nil, "pre": nil, "blockquote": nil,
	"a": {"href", "rel", "target"},
}

// safeHTML checks rendered HTML: only allowed elements and attributes;
// links to http(s) only, each opening in a new tab without referrer.
func safeHTML(s string) error {
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return nil
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attrs, ok := allowed[tok.Data]
			if !ok {
				return fmt.Errorf("element <%s>", tok.Data)
			}
			seen := map[string]string{}
			for _, a := range tok.Attr {
				if !contains(attrs, a.Key) {
					return fmt.Errorf("attribute %s on <%s>", a.Key, tok.Data)
				}
				seen[a.Key] = a.Val
			}
			if tok.Data == "a" {
				href := seen["href"]
				if !strings.HasPrefix(href, "http://") && !strings.HasPrefix(href, "https://") {
					return fmt.Errorf("link to %q", href)
				}
				if seen["target"] != "_blank" || seen["rel"] != "nofollow noreferrer noopener" {
					return fmt.Errorf("link without target _blank and rel nofollow noreferrer noopener: %v", seen)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Whatever the text, the HTML is safe and shows every letter typed.
func FuzzRenderHTML(f *testing.F) {
	for _, s := range []string{"hi", "*a* _b_ `c`", "```\nx\n```", "> q", "https://a.b/c", "www.a.b", "<script>", "[x](javascript:y)", "a\\b&c", "    x", "`a``b`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4000 {
			return
		}
		out := chat.RenderHTML(s)
		if err := safeHTML(out); err != nil {
			t.Fatalf("RenderHTML(%q) = %s: %v", s, out, err)
		}
		// The letters typed are all there, markup aside (and a code fence's
		// language, which names the code and is not shown).
		for _, r := range withoutFenceInfo(s) {
			if r > ' ' && !strings.ContainsRune("*_`>&<\\\"'", r) && !strings.ContainsRune(html.UnescapeString(out), r) {
				t.Fatalf("RenderHTML(%q) = %s: lost %q", s, out, r)
			}
		}
	})
}

// withoutFenceInfo is s without the lines that open or close a fence
// (their backticks or tildes, and the language after them), also a fence
// inside a quote ("> ~~~").
func withoutFenceInfo(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		t := strings.TrimLeft(line, " \t>")
		for _, fence := range []string{"```", "~~~"} {
			if strings.HasPrefix(t, fence) {
				line = ""
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// BenchmarkRenderHTML is what rendering costs a message: plain words take
// the fast path; markup and links go through goldmark and the sanitizer,
// once: again, the text's HTML comes from the cache.
//
//	go test ./chat -run '^$' -bench RenderHTML
func BenchmarkRenderHTML(b *testing.B) {
	for _, in := range []struct{ name, text string }{
		{"plain", "on my way, see you at seven at the usual place"},
		{"markup", "*on my way*, see https://example.org/map?at=7 and `the door code`"},
	} {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				chat.RenderHTML(in.text + strconv.Itoa(i)) // a new text each time: no cache
			}
		})
		b.Run(in.name+"-again", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				chat.RenderHTML(in.text) // a page of history read again
			}
		})
	}
}
