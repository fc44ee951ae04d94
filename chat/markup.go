package chat

import (
	"bytes"
	"html"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	"nochat/db"
)

// A message's text is shown as HTML made here, once, on the server: the
// page inserts what this makes, for the history it renders and for every
// message that arrives live, so there is one renderer and the two cannot
// disagree. It knows a chat's small markup and nothing more:
//
//	*bold* **bold**  _italic_  `code`  ```fenced code```  > quote
//	http://, https:// and www. addresses as links; line breaks kept
//
// Everything else is text: HTML in a message is shown, not run; "# room"
// at a line's start is not a heading, "- x" not a list, "[a](b)" not a
// link. What goldmark makes then passes an allow-list sanitizer
// (bluemonday), so even a bug in the parser cannot put a script, an
// event handler or a javascript: link on the page.

// RenderHTML is text as the page shows it: sanitized HTML.
func RenderHTML(text string) string {
	if plain(text) {
		return plainHTML(text) // most lines are plain words
	}
	if out, ok := rendered.get(text); ok {
		return out
	}
	r := renderer()
	var buf bytes.Buffer
	if err := r.md.Convert(literal(text), &buf); err != nil {
		return "<p>" + html.EscapeString(text) + "</p>" // goldmark writes to memory: no error comes
	}
	out := strings.TrimSpace(r.policy.Sanitize(buf.String()))
	if len(out) > maxHTML(len(text)) {
		// Whatever markup made it so large (a wall of links), the text is
		// shown as typed: a frame, sent to every reader and read back with
		// every page of history, stays near the size of what was stored.
		out = plainHTML(text)
	}
	rendered.put(text, out)
	return out
}

// plainHTML is text escaped, with its line breaks.
func plainHTML(text string) string {
	return "<p>" + strings.ReplaceAll(html.EscapeString(text), "\n", "<br>\n") + "</p>"
}

// maxHTML bounds the HTML of a text of n bytes: a few links and some
// emphasis make two or three times the text; a text of little else than
// addresses (eight times) is shown as typed.
func maxHTML(n int) int { return 4*n + 512 }

// maxQuoteDepth is how deep quotes nest: a quote of a quote of a quote.
// Deeper ">" are text: a line of a thousand would otherwise be a thousand
// nested blockquotes, 54 KB of HTML for 2 KB typed.
const maxQuoteDepth = 3

// shallowQuotes is goldmark's blockquote parser, which opens no quote
// deeper than maxQuoteDepth: the line's further ">" are then a paragraph's
// text. In the parser, not the text, so that a ">" in code (quoted code
// too) stays as typed.
type shallowQuotes struct{ parser.BlockParser }

func (q shallowQuotes) Open(parent ast.Node, reader text.Reader, pc parser.Context) (ast.Node, parser.State) {
	depth := 0
	for n := parent; n != nil; n = n.Parent() {
		if n.Kind() == ast.KindBlockquote {
			depth++
		}
	}
	if depth >= maxQuoteDepth {
		return nil, parser.NoChildren
	}
	return q.BlockParser.Open(parent, reader, pc)
}

// rendered remembers the HTML of recent texts with markup: a page of
// history is read again and again, and goldmark and the sanitizer take
// tens of microseconds a message where the fast path takes less than one.
var rendered = renderCache{entries: make(map[string]string)}

// maxRenderCache bounds the cache, texts and HTML together, in bytes.
const maxRenderCache = 1 << 20

type renderCache struct {
	mu      sync.Mutex
	entries map[string]string
	bytes   int
}

func (c *renderCache) get(text string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, ok := c.entries[text]
	return out, ok
}

func (c *renderCache) put(text, out string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+len(text)+len(out) > maxRenderCache {
		clear(c.entries) // simple, and the next pages fill it again
		c.bytes = 0
	}
	c.entries[text] = out
	c.bytes += len(text) + len(out)
}

// WithHTML fills in each message's HTML (MessageHTML of its text and
// mentions), for the REST answers and the page.
func WithHTML(msgs []db.Message) []db.Message {
	for i := range msgs {
		msgs[i].HTML = MessageHTML(msgs[i].Message, msgs[i].Mentions)
	}
	return msgs
}

// markupChars are the characters that can start markup: without any of
// them, and with no "www." or "://", a text is plain.
const markupChars = "*_`>&<\\"

// plain reports whether text has nothing the renderer would change but
// escaping and line breaks.
func plain(text string) bool {
	return !strings.ContainsAny(text, markupChars) && !strings.Contains(text, "://") &&
		!strings.Contains(text, "www.") && !strings.Contains(text, "    ") && !strings.Contains(text, "\t")
}

// literal prepares text for goldmark so that what a person typed is what
// the page shows, markup aside. Outside code:
//   - a backslash is doubled and an ampersand that starts a reference
//     written &amp;, so that
//     goldmark's backslash escapes and entity references (\*, &#60;) do not
//     eat or turn into other characters what was typed (a Windows path, a
//     pasted "&lt;");
//   - the spaces and tabs that start a line (or follow a quote's ">")
//     become no-break spaces: an indented line is the message's own
//     layout, not Markdown's indented code (which this renderer does not
//     have, and without which goldmark would drop the line).
//
// Code (fenced blocks, and `spans` within a line) is left as it is: goldmark
// shows it verbatim.
func literal(text string) []byte {
	var out bytes.Buffer
	fenced := false
	for line := range strings.Lines(text) {
		trimmed := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fenced = !fenced
			out.WriteString(line)
			continue
		}
		if fenced {
			out.WriteString(line)
			continue
		}
		if len(trimmed) == len(line) {
			// A quote's markers (">", "> > "), then what follows them is
			// the line whose indent is kept.
			for strings.HasPrefix(line, ">") {
				n := 1
				if strings.HasPrefix(line[1:], " ") {
					n++
				}
				out.WriteString(line[:n])
				line = line[n:]
			}
			trimmed = strings.TrimLeft(line, " \t")
		}
		if strings.TrimSpace(trimmed) != "" {
			for _, c := range line[:len(line)-len(trimmed)] {
				if c == '\t' {
					out.WriteString("\u00a0\u00a0\u00a0\u00a0")
				} else {
					out.WriteString("\u00a0")
				}
			}
			line = trimmed
		}
		escapeOutsideSpans(&out, line)
	}
	return out.Bytes()
}

// escapeOutsideSpans writes line with its backslashes doubled and the
// ampersands that start a reference as &amp;, except inside code spans: a run of backticks up to
// the next run of as many.
func escapeOutsideSpans(out *bytes.Buffer, line string) {
	word := 0 // where the word i is in begins
	for i := 0; i < len(line); {
		switch c := line[i]; c {
		case '`':
			n := 0
			for i+n < len(line) && line[i+n] == '`' {
				n++
			}
			fence := line[i : i+n]
			end := closingRun(line[i+n:], n)
			if end < 0 {
				out.WriteString(fence) // no closing run: literal backticks
				i += n
				continue
			}
			out.WriteString(line[i : i+n+end+n])
			i += n + end + n
		case '\\':
			out.WriteString(`\\`)
			i++
		case '&':
			// Only where goldmark would read an entity reference ("&lt;",
			// "&#60;"): a bare ampersand is text to it already, and one in
			// an address ("?v=a&t=42") must reach the linkifier as typed,
			// or the link's address and text would hold "&amp;".
			// In an address the linkifier reads the text as it is, so
			// there even "&amp;" is the address's own, and stays.
			if entityAt(line[i:]) && !inAddress(line[word:i]) {
				out.WriteString("&amp;")
			} else {
				out.WriteByte(c)
			}
			i++
		case ' ', '\t', '\n', '\r':
			out.WriteByte(c)
			i++
			word = i
		default:
			out.WriteByte(c)
			i++
		}
	}
}

// inAddress reports whether the start of a word, up to an ampersand,
// is a web address the linkifier would take.
func inAddress(word string) bool {
	return strings.Contains(word, "://") || strings.HasPrefix(word, "www.")
}

// entityAt reports whether s starts with what CommonMark reads as an
// entity or numeric character reference: "&name;", "&#123;", "&#x1F;".
func entityAt(s string) bool {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 33 { // the longest entity name is 31 letters
		return false
	}
	ref := s[1:end]
	if ref[0] == '#' {
		ref = ref[1:]
		hex := len(ref) > 0 && (ref[0] == 'x' || ref[0] == 'X')
		if hex {
			ref = ref[1:]
		}
		if len(ref) == 0 || len(ref) > 7 {
			return false
		}
		for _, c := range []byte(ref) {
			if !isDigit(c) && !(hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
				return false
			}
		}
		return true
	}
	for j, c := range []byte(ref) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && isDigit(c)) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// closingRun is the index in s of the first run of exactly n backticks,
// -1 if there is none.
func closingRun(s string, n int) int {
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '`' {
			j++
		}
		if j-i == n {
			return i
		}
		i = j
	}
	return -1
}

type markup struct {
	md     goldmark.Markdown
	policy *bluemonday.Policy
}

var renderer = sync.OnceValue(func() *markup {
	md := goldmark.New(
		goldmark.WithParser(parser.NewParser(
			parser.WithBlockParsers(
				util.Prioritized(parser.NewFencedCodeBlockParser(), 700),
				util.Prioritized(shallowQuotes{parser.NewBlockquoteParser()}, 800),
				util.Prioritized(parser.NewParagraphParser(), 1000),
			),
			parser.WithInlineParsers(
				util.Prioritized(parser.NewCodeSpanParser(), 100),
				util.Prioritized(emphasisParser{}, 500),
				util.Prioritized(extension.NewLinkifyParser(
					extension.WithLinkifyAllowedProtocols([]string{"http:", "https:"}),
					extension.WithLinkifyEmailRegexp(regexp.MustCompile(`\A[^\s\S]`)), // never: no mailto links
				), 999),
			),
		)),
		goldmark.WithRendererOptions(gmhtml.WithHardWraps()),
	)
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "strong", "em", "code", "pre", "blockquote")
	p.AllowAttrs("href").OnElements("a")
	// Web addresses with a host: "https://#x" is no link.
	hasHost := func(u *url.URL) bool { return u.Host != "" }
	p.AllowURLSchemeWithCustomPolicy("http", hasHost)
	p.AllowURLSchemeWithCustomPolicy("https", hasHost)
	p.RequireParseableURLs(true)
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true) // and rel="noopener"
	return &markup{md: md, policy: p}
})

// emphasisParser is goldmark's emphasis with a chat's meaning: a star,
// single or double, is bold (*bold*, **bold**); an underscore is italic.
type emphasisParser struct{}

func (emphasisParser) Trigger() []byte { return []byte{'*', '_'} }

func (emphasisParser) Parse(_ ast.Node, block text.Reader, pc parser.Context) ast.Node {
	before := block.PrecendingCharacter()
	line, segment := block.PeekLine()
	proc := parser.DelimiterProcessor(italic{})
	if line[0] == '*' {
		proc = bold{}
	}
	node := parser.ScanDelimiter(line, before, 1, proc)
	if node == nil {
		return nil
	}
	node.Segment = segment.WithStop(segment.Start + node.OriginalLength)
	block.Advance(node.OriginalLength)
	pc.PushDelimiter(node)
	return node
}

// bold and italic close what their own character opened.
type (
	bold   struct{}
	italic struct{}
)

func (bold) IsDelimiter(b byte) bool                             { return b == '*' }
func (bold) CanOpenCloser(opener, closer *parser.Delimiter) bool { return opener.Char == closer.Char }
func (bold) OnMatch(int) ast.Node                                { return ast.NewEmphasis(2) }

func (italic) IsDelimiter(b byte) bool                             { return b == '_' }
func (italic) CanOpenCloser(opener, closer *parser.Delimiter) bool { return opener.Char == closer.Char }
func (italic) OnMatch(int) ast.Node                                { return ast.NewEmphasis(1) }
