package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// An admin makes a bot on the dashboard's Bots panel, in the lobby, and
// copies its token, shown once; the bot posts with it, and the chat page
// shows its message with a bot tag and its avatar, live and after a reload.
func TestBrowserBotsPanelMakesABotThatPosts(t *testing.T) {
	s := startAdmin(t)
	browser := newBrowser(t)
	admin := newTab(t, browser)
	browserAdminLogin(t, admin, s)
	// A refusal is said by the form's button, where the admin looks.
	do(t, admin,
		chromedp.WaitVisible(chromedp.ID("bot-name")),
		chromedp.SendKeys(chromedp.ID("bot-name"), "Washer"),
		chromedp.SendKeys(chromedp.ID("bot-avatar"), "printer"),
		chromedp.Click(chromedp.CSS(`#bots form[action="/admin/bots"] button[type="submit"]`)),
	)
	waitPage(t, admin, "the bad avatar refused by the form", `document.querySelector('#bots form[action="/admin/bots"] .problem[role="alert"]')?.textContent.startsWith("Avatar")`)
	eval[bool](t, admin, `(document.getElementById("bot-avatar").scrollIntoView({block: "center"}), true)`)
	viewShot(t, admin, "bot-refused-1280.png")
	do(t, admin,
		chromedp.SetValue(chromedp.ID("bot-avatar"), "🧺"), // typed keys cannot carry an emoji
		chromedp.Click(chromedp.CSS(`#bots form[action="/admin/bots"] input[name="room"][value="1"]`)),
		chromedp.Click(chromedp.CSS(`#bots form[action="/admin/bots"] button[type="submit"]`)),
	)
	waitPage(t, admin, "the new bot's token", `!!document.getElementById("bot-token") && document.getElementById("bot-token").value.startsWith("nochat_bot_")`)
	waitPage(t, admin, "Washer on the list", `!!document.querySelector('#bots-list tr[data-bot="Washer"]') && document.querySelector('#bots-list tr[data-bot="Washer"] .rooms').textContent.includes("lobby")`)
	token := eval[string](t, admin, `document.getElementById("bot-token").value`)
	do(t, admin, chromedp.Click(chromedp.CSS(`button[data-copy="bot-token"]`)))
	waitPage(t, admin, "the Copy button's answer", `["Copied", "Press Ctrl+C"].includes(document.querySelector('button[data-copy="bot-token"]').textContent)`)
	screenshots(t, admin, "bots-panel")

	chat := newTab(t, browser)
	do(t, chat, chromedp.Navigate(s.url+"/"))
	connected(t, chat)
	req, _ := http.NewRequest("POST", s.url+"/rooms/lobby/messages", strings.NewReader(`{"message": "The washing machine is done"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "wash-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the bot's post: %d %s", resp.StatusCode, body)
	}
	const botMessage = `Array.from(document.querySelectorAll("#messages li")).some(li => li.textContent.includes("The washing machine is done") && Array.from(li.querySelectorAll(".by .tag")).some(t => t.textContent === "bot") && li.querySelector(".avatar.face")?.dataset.initials === "🧺")`
	waitPage(t, chat, "the bot's message with its tag and avatar", botMessage)
	screenshots(t, chat, "bot-message")
	// The history the server renders shows it the same.
	do(t, chat, chromedp.Reload())
	waitPage(t, chat, "the bot's message with its avatar, after a reload", botMessage)
}
