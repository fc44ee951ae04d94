package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Rooms and direct messages on a cluster, as people use them: Ann, on
// n2's page, makes a room; Bob, on n3's page, sees it offered at once,
// joins it and answers, and Ann reads him live; Bob starts a direct
// conversation with Ann from n3, and it reaches her page on n2, where she
// answers; with a second tab on n1 she is one person on his page, and
// he sees her type there. Screenshots of both pages at phone and
// desktop width.
func TestBrowserClusterRoomsAndDirectMessagesAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes: not in -short")
	}
	if raceEnabled {
		t.Skip("the processes run a binary built without the race detector: the plain run tests them")
	}
	ann := newBrowser(t)
	c := newTestCluster(t, 3)
	c.env = []string{"NOCHAT_ADMIN_PASSWORD=", "NOCHAT_LOG_LEVEL=info", "NOCHAT_MSG_RATE=1000"}
	c.startAll()
	n1, n2, n3 := c.nodes[0].p, c.nodes[1].p, c.nodes[2].p

	// Ann sets the chat up through n1's link; the invite link she finds
	// on n1's dashboard lets Bob in (cookies are the host's, whatever the
	// port, as behind one address).
	link, _ := processSetupLink(t, n1)
	invite := setUpAdmin(t, ann, link, n1.url)
	bob := newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, bob, invite, "Bob")

	do(t, ann, chromedp.Navigate(n2.url+"/"))
	connected(t, ann)
	do(t, bob, chromedp.Navigate(n3.url+"/"))
	connected(t, bob)

	fillDialog(t, ann, "new-room", "new-room-dialog", map[string]string{"name": "Garden"})
	waitPage(t, ann, "Ann in #garden on n2", `location.pathname === "/r/garden"`)
	say(t, ann, "tomatoes are in")
	waitMessages(t, ann, "Ann's line", contains("tomatoes are in"))

	waitPage(t, bob, "Garden offered to Bob on n3", `!!document.querySelector('#browse-list a.room-link[data-slug="garden"]')`)
	clickRoom(t, bob, "Garden")
	waitMessages(t, bob, "Garden's history on n3", contains("tomatoes are in"))
	do(t, bob, chromedp.Click(chromedp.ID("join-now")))
	waitPage(t, bob, "the composer after joining", `document.getElementById("join-bar").hidden && !document.getElementById("composer").hidden && !document.getElementById("message").disabled`)
	say(t, bob, "the beans too, from n3")
	waitMessages(t, ann, "Bob's answer, live on n2", contains("the beans too, from n3"))

	fillDialog(t, bob, "new-dm", "new-dm-dialog", map[string]string{"members": "Ann"})
	waitPage(t, bob, "Bob in his conversation with Ann", `location.pathname.startsWith("/r/dm-")`)
	say(t, bob, "a word just for you")
	waitPage(t, ann, "the conversation in Ann's list on n2", `!!document.querySelector('#dm-list a.room-link')`)
	do(t, ann, chromedp.Click(`#dm-list a.room-link`))
	waitMessages(t, ann, "Bob's word on n2", contains("a word just for you"))
	say(t, ann, "heard you, through n2")
	waitMessages(t, bob, "Ann's answer on n3", contains("heard you, through n2"))

	// Ann opens the conversation in a second tab, on n1: Bob's page on n3
	// lists her once, with her two devices, not as two people.
	dm := eval[string](t, ann, `location.pathname`)
	annAgain := newTab(t, ann)
	do(t, annAgain, chromedp.Navigate(n1.url+dm))
	connected(t, annAgain)
	waitPage(t, bob, "Ann once, with two devices, on n3", `(() => {
		const lines = [...document.querySelectorAll('#online-users li')].filter((li) => li.querySelector('.who')?.textContent === 'Ann');
		return lines.length === 1 && lines[0].querySelector('.count')?.textContent === '2 devices';
	})()`)
	do(t, bob, chromedp.Click(`#presence summary`))
	screenshots(t, bob, "cluster-presence-n3")
	do(t, bob, chromedp.Click(`#presence summary`))
	// She types there: Bob, on n3, sees it; her own tab on n2 does not.
	do(t, annAgain, chromedp.SendKeys(chromedp.ID("message"), "one more th"))
	waitPage(t, bob, "Ann typing, on n3", `document.getElementById("typing").textContent === "Ann is typing…"`)
	if ownTyping := eval[string](t, ann, `document.getElementById("typing").textContent`); ownTyping != "" {
		t.Errorf("Ann's own tab on n2 says %q while she types on n1", ownTyping)
	}

	screenshots(t, ann, "cluster-dm-n2")
	clickRoom(t, bob, "Garden")
	waitMessages(t, bob, "Garden again on n3", contains("the beans too, from n3"))
	screenshots(t, bob, "cluster-garden-n3")
}
