package handlers_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestChatPageOffersOlderMessagesOnlyWhenThereAreSome(t *testing.T) {
	a := newApp(t)
	loadOlder := regexp.MustCompile(`<button id="load-older"[^>]*>`)
	shown := regexp.MustCompile(`<li class="msg"`)
	for i := range 50 {
		a.send(t, fmt.Sprint("m", i+1))
	}
	page := a.do(t, "GET", "/", "").body
	if btn := loadOlder.FindString(page); !strings.Contains(btn, "hidden") {
		t.Fatalf("exactly one page of messages (50), nothing older, yet the page offers %s", btn)
	}
	if n := len(shown.FindAllString(page, -1)); n != 50 {
		t.Fatalf("the page shows %d messages, want 50", n)
	}
	a.send(t, "m51")
	page = a.do(t, "GET", "/", "").body
	if btn := loadOlder.FindString(page); strings.Contains(btn, "hidden") {
		t.Fatalf("51 messages, one older than the page, but %s", btn)
	}
	if n := len(shown.FindAllString(page, -1)); n != 50 || strings.Contains(page, ">m1<") || !strings.Contains(page, ">m51<") {
		t.Fatalf("the page shows %d messages, want the newest 50 (m2 to m51)", n)
	}
}

func TestChatPageCarriesTheServersLimits(t *testing.T) {
	a := newApp(t)
	page := a.do(t, "GET", "/", "").body
	textarea := regexp.MustCompile(`<textarea id="message"[^>]*>`).FindString(page)
	// No maxlength: it would cut a long paste silently. app.js counts
	// against the server's limit and refuses instead.
	if strings.Contains(textarea, "maxlength") || !strings.Contains(textarea, `data-max-length="2000"`) {
		t.Fatalf("the message box is %s, want data-max-length=\"2000\" and no maxlength", textarea)
	}
	if name := regexp.MustCompile(`<input id="name"[^>]*>`).FindString(page); !strings.Contains(name, `maxlength="32"`) {
		t.Fatalf("the name field is %s, want maxlength=\"32\"", name)
	}
	if !strings.Contains(page, `data-page-size="50"`) {
		t.Fatal("the page does not tell app.js the history page size")
	}
}
