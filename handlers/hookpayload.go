package handlers

import (
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"nochat/chat"
)

// What an incoming webhook's body becomes: the text of one message. Tools
// that "speak Slack webhook" post JSON in the shape of Slack's incoming
// webhooks; others post plain text (curl -d, ntfy-style), a form, or the
// JSON of their own generic notifier. hookText takes them all:
//
//	text/plain (or none)       the body is the text
//	application/json           Slack's shape: text, blocks, attachments,
//	                           username; else {"message", "title"} (Home
//	                           Assistant's REST notify, POST_JSON); else
//	                           {"msg"} (Uptime Kuma's Webhook notifier)
//	x-www-form-urlencoded      payload=<Slack JSON> (Slack's legacy form),
//	                           message= [title=] (Home Assistant, POST), text=;
//	                           a body that is none of these is the text (curl -d)
//
// Slack's mrkdwn is close to NoChat's markup: *bold*, _italic_, `code`,
// ``` fences and > quotes pass through. Its links <url|label> become
// "label (url)" (NoChat makes links of addresses, not of labels), <url>
// the address, <!here> and the like "@here", and its escapes &lt; &gt;
// &amp; the characters.

var (
	errHookNoText   = errors.New("no text: send text/plain, or Slack's JSON with text (or blocks or attachments)")
	errHookBadJSON  = errors.New("body must be a JSON object in Slack's incoming-webhook shape: {\"text\": \"...\"}")
	errHookBadForm  = errors.New("payload must be a JSON object in Slack's incoming-webhook shape: payload={\"text\": \"...\"}")
	errHookBadUTF8  = errors.New("body is not valid UTF-8")
	errHookBadBlock = errors.New("blocks and attachments: at most 100 of each, with at most 100 fields or elements each")
)

// maxHookParts bounds blocks, attachments, and the fields and elements of
// each: Slack's own limit is 50 blocks a message.
const maxHookParts = 100

// slackText is a Slack text object: {"type": "mrkdwn"|"plain_text", "text"}.
type slackText struct {
	Text string `json:"text"`
}

// slackBlock is the part of a Block Kit block that carries text.
type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text"`
	Fields   []slackText `json:"fields"`
	Elements []struct {
		Type string          `json:"type"`
		Text json.RawMessage `json:"text"` // a text object (button) or a string (context mrkdwn)
		URL  string          `json:"url"`
	} `json:"elements"`
}

// slackAttachment is a Slack attachment, legacy fields and blocks.
type slackAttachment struct {
	Fallback  string `json:"fallback"`
	Pretext   string `json:"pretext"`
	Title     string `json:"title"`
	TitleLink string `json:"title_link"`
	Text      string `json:"text"`
	Fields    []struct {
		Title string `json:"title"`
		Value string `json:"value"`
	} `json:"fields"`
	Blocks []slackBlock `json:"blocks"`
}

// hookPayload is every JSON shape hookText reads.
type hookPayload struct {
	Text        string            `json:"text"`
	Username    string            `json:"username"`
	Blocks      []slackBlock      `json:"blocks"`
	Attachments []slackAttachment `json:"attachments"`
	Message     string            `json:"message"` // Home Assistant's REST notify
	Title       string            `json:"title"`
	Msg         string            `json:"msg"` // Uptime Kuma's Webhook notifier
}

// hookText is the message a webhook's body asks for (see above), with
// the username it gives ("" for none).
func hookText(contentType string, body []byte) (text, username string, err error) {
	if !utf8.Valid(body) {
		return "", "", errHookBadUTF8
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/json":
		if !chat.ValidJSONText(body) {
			return "", "", errHookBadUTF8
		}
		var p hookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			return "", "", errHookBadJSON
		}
		return p.text()
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		switch {
		case err == nil && form.Has("payload"):
			payload := []byte(form.Get("payload"))
			if !chat.ValidJSONText(payload) {
				return "", "", errHookBadUTF8 // %FF, or half a surrogate pair, would be U+FFFD
			}
			var p hookPayload
			if err := json.Unmarshal(payload, &p); err != nil {
				return "", "", errHookBadForm
			}
			return p.text()
		case err == nil && form.Has("message"):
			return titled(form.Get("title"), form.Get("message")), "", nil
		case err == nil && form.Has("text"):
			return nonEmpty(form.Get("text"), "")
		}
		// curl -d 'The washing machine is done' sends this type too.
	}
	return nonEmpty(strings.TrimRight(string(body), "\r\n"), "")
}

func nonEmpty(text, username string) (string, string, error) {
	if strings.TrimSpace(text) == "" {
		return "", "", errHookNoText
	}
	return text, username, nil
}

// text is what Slack would show of p: its blocks (its text is then the
// notification's fallback) or its text, then each attachment.
func (p hookPayload) text() (string, string, error) {
	if len(p.Blocks) > maxHookParts || len(p.Attachments) > maxHookParts {
		return "", "", errHookBadBlock
	}
	var parts []string
	if b, err := blocksText(p.Blocks); err != nil {
		return "", "", err
	} else if b != "" {
		parts = append(parts, b)
	} else if p.Text != "" {
		parts = append(parts, slackMarkup(p.Text))
	}
	for _, a := range p.Attachments {
		s, err := a.text()
		if err != nil {
			return "", "", err
		}
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		switch {
		case p.Message != "":
			parts = append(parts, titled(p.Title, p.Message))
		case p.Msg != "":
			parts = append(parts, p.Msg)
		}
	}
	return nonEmpty(strings.Join(parts, "\n"), p.Username)
}

// titled is a message under its title, in bold.
func titled(title, message string) string {
	if title = strings.TrimSpace(title); title == "" {
		return message
	}
	return "**" + title + "**\n" + message
}

func (a slackAttachment) text() (string, error) {
	if len(a.Fields) > maxHookParts {
		return "", errHookBadBlock
	}
	var parts []string
	if a.Pretext != "" {
		parts = append(parts, slackMarkup(a.Pretext))
	}
	switch {
	case a.Title != "" && a.TitleLink != "":
		parts = append(parts, "*"+a.Title+"* ("+a.TitleLink+")")
	case a.Title != "":
		parts = append(parts, "*"+a.Title+"*")
	}
	if a.Text != "" {
		parts = append(parts, slackMarkup(a.Text))
	}
	for _, f := range a.Fields {
		parts = append(parts, "*"+f.Title+"*: "+slackMarkup(f.Value))
	}
	b, err := blocksText(a.Blocks)
	if err != nil {
		return "", err
	}
	if b != "" {
		parts = append(parts, b)
	}
	if len(parts) == 0 && a.Fallback != "" {
		parts = append(parts, slackMarkup(a.Fallback))
	}
	return strings.Join(parts, "\n"), nil
}

// blocksText is the text of Block Kit blocks: headers in bold, sections'
// text and fields, context elements, and buttons with their address.
func blocksText(blocks []slackBlock) (string, error) {
	if len(blocks) > maxHookParts {
		return "", errHookBadBlock
	}
	var parts []string
	for _, b := range blocks {
		if len(b.Fields) > maxHookParts || len(b.Elements) > maxHookParts {
			return "", errHookBadBlock
		}
		if b.Text != nil && b.Text.Text != "" {
			if b.Type == "header" {
				parts = append(parts, "*"+b.Text.Text+"*")
			} else {
				parts = append(parts, slackMarkup(b.Text.Text))
			}
		}
		for _, f := range b.Fields {
			if f.Text != "" {
				parts = append(parts, slackMarkup(f.Text))
			}
		}
		for _, e := range b.Elements {
			var label string
			var obj slackText
			if json.Unmarshal(e.Text, &label) != nil && json.Unmarshal(e.Text, &obj) == nil {
				label = obj.Text
			}
			switch {
			case e.URL != "" && label != "":
				parts = append(parts, label+" ("+e.URL+")")
			case e.URL != "":
				parts = append(parts, e.URL)
			case label != "":
				parts = append(parts, slackMarkup(label))
			}
		}
	}
	return strings.Join(parts, "\n"), nil
}

// slackLink is Slack's <...> special syntax: links, mentions, dates.
var slackLink = regexp.MustCompile(`<([^<>\s][^<>]*)>`)

// slackMarkup is Slack mrkdwn as NoChat's markup (see the top of the
// file).
func slackMarkup(s string) string {
	s = slackLink.ReplaceAllStringFunc(s, func(m string) string {
		inner := m[1 : len(m)-1]
		target, label, hasLabel := strings.Cut(inner, "|")
		switch {
		case strings.HasPrefix(target, "!"):
			if hasLabel {
				return label // <!date^...|fallback>, <!subteam^ID|@team>
			}
			return "@" + strings.TrimPrefix(target, "!") // <!here>, <!channel>
		case strings.HasPrefix(target, "@"), strings.HasPrefix(target, "#"):
			if hasLabel {
				return target[:1] + strings.TrimPrefix(label, target[:1])
			}
			return target
		case !hasLabel || label == target:
			return target
		}
		return label + " (" + target + ")"
	})
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
