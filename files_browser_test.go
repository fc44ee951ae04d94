package main

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// fileShape is what a reader sees of a message's file, the same for the
// server's rendering and app.js's: classes, link, picture and its size,
// the download's name and size.
const fileShape = `(() => {
	const a = document.querySelector('#messages li.msg .file' + SEL);
	if (!a) return '';
	const img = a.querySelector('img');
	return [a.className, a.getAttribute('href'), a.target, a.title, a.getAttribute('download'),
		img && img.getAttribute('src'), img && img.width, img && img.height, img && img.alt,
		[...a.querySelectorAll('span')].map(e => e.textContent).join('/')].join(' | ');
})()`

// A picture picked with the paperclip shows, as its thumbnail, on another
// person's page, sized before it loads, and opens full size; a file
// dropped on the room shows as a download with its size; an upload that
// fails says so and goes through on Retry. The server's rendering of the
// history shows both exactly as the live page did.
func TestBrowserPicturesAndFiles(t *testing.T) {
	s, ann, invite := startWithAdmin(t)
	bob := newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, bob, invite, "Bob")
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)

	// A 1200×800 photo: shown 320×213, opened 1200×800.
	img := image.NewRGBA(image.Rect(0, 0, 1200, 800))
	for y := range 800 {
		for x := range 1200 {
			img.Set(x, y, color.RGBA{uint8(x / 5), uint8(y / 4), 160, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	photo := filepath.Join(t.TempDir(), "harbour.jpg")
	if err := os.WriteFile(photo, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ann, `document.getElementById('attach').getAttribute('aria-label')`); got != "Attach a picture or file" {
		t.Fatalf("the paperclip's label: %q", got)
	}
	do(t, ann, chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{photo}))

	picture := strings.Replace(fileShape, "SEL", `'.picture'`, 1)
	waitPage(t, bob, "Ann's picture on Bob's page", `(() => { const i = document.querySelector('#messages .file.picture img'); return !!i && i.complete && i.naturalWidth === 480; })()`)
	live := eval[string](t, bob, picture)
	if !strings.HasPrefix(live, "file picture | /files/") || !strings.Contains(live, "| _blank | harbour.jpg (open full size) |  | /files/") || !strings.HasSuffix(live, "/thumb | 320 | 213 | harbour.jpg | ") {
		t.Fatalf("the picture on Bob's page: %s", live)
	}
	waitPage(t, ann, "the upload done", `document.getElementById('uploads').hidden && !!document.querySelector('#messages .file.picture img')`)

	// Open full size: a new tab with the whole picture.
	opened := chromedp.WaitNewTarget(bob, func(i *target.Info) bool { return strings.Contains(i.URL, "/files/") })
	do(t, bob, chromedp.Click(chromedp.CSS(`#messages .file.picture`)))
	select {
	case id := <-opened:
		full, closeFull := chromedp.NewContext(bob, chromedp.WithTargetID(id))
		waitPage(t, full, "the full-size picture", `document.contentType === 'image/jpeg' && document.images.length === 1 && document.images[0].naturalWidth === 1200 && document.images[0].naturalHeight === 800`)
		closeFull() // and back to the chat, in front again
	case <-time.After(20 * time.Second):
		t.Fatal("clicking the picture opened no tab")
	}

	// A file dropped on the room: a download, with its name and size.
	do(t, ann, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(['x'.repeat(2400)], 'minutes.txt', { type: 'text/plain' }));
		document.getElementById('scroller').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`))
	download := strings.Replace(fileShape, "SEL", `'.download'`, 1)
	waitPage(t, bob, "the dropped file on Bob's page", `!!document.querySelector('#messages .file.download')`)
	liveDownload := eval[string](t, bob, download)
	if !strings.HasPrefix(liveDownload, "file download | /files/") || !strings.HasSuffix(liveDownload, "| minutes.txt |  |  |  |  | /minutes.txt/2.4 kB") {
		t.Fatalf("the dropped file on Bob's page: %s", liveDownload)
	}

	// Offline, an upload fails and says so; back online, Retry sends it.
	setOffline(t, ann, true)
	do(t, ann, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(['pasted'], 'pasted.txt', { type: 'text/plain' }));
		document.getElementById('message').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`))
	waitPage(t, ann, "the failed upload", `document.querySelector('#uploads .upload.failed .up-state')?.textContent.startsWith('Not sent:') && !!document.querySelector('#uploads .upload.failed button.retry')`)
	screenshots(t, ann, "upload-failed")
	setOffline(t, ann, false)
	connected(t, ann)
	do(t, ann, chromedp.Click(chromedp.CSS(`#uploads .upload.failed button.retry`)))
	waitPage(t, bob, "the retried upload on Bob's page", `[...document.querySelectorAll('#messages .file-name')].map(e => e.textContent).join() === 'minutes.txt,pasted.txt'`)
	waitPage(t, ann, "the retried upload done", `document.getElementById('uploads').hidden`)
	screenshots(t, bob, "files")

	// Typed first, then a file: the text goes as its caption, and the
	// reply begun goes with it; the box is empty after.
	say(t, bob, "what were the minutes about?")
	clickIn(t, ann, "what were the minutes about?", ".act-reply")
	waitPage(t, ann, "the reply begun", `!document.getElementById('replying').hidden`)
	do(t, ann, chromedp.SendKeys(chromedp.ID("message"), "the agenda, here"))
	do(t, ann, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(['1. the roof'], 'agenda.txt', { type: 'text/plain' }));
		document.getElementById('message').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`))
	waitPage(t, bob, "the file with its caption, quoting Bob", msgLine("the agenda, here")+`?.querySelector('.file-name')?.textContent === 'agenda.txt' && `+
		msgLine("the agenda, here")+`.querySelector('button.quote')?.textContent.includes('what were the minutes about?')`)
	if !eval[bool](t, ann, `document.getElementById('message').value === '' && document.getElementById('replying').hidden`) {
		t.Fatal("the caption sent, Ann's message box still holds it, or the reply")
	}
	screenshots(t, bob, "file-caption")

	// A refusal the same file would get again (a text calling itself a
	// JPEG) offers no Retry, only Dismiss; dismissed, its caption comes
	// back to the box, and the reply it was.
	clickIn(t, ann, "what were the minutes about?", ".act-reply")
	waitPage(t, ann, "the reply begun again", `!document.getElementById('replying').hidden`)
	do(t, ann, chromedp.SendKeys(chromedp.ID("message"), "my picture"))
	do(t, ann, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(['not a picture'], 'fake.jpg', { type: 'image/jpeg' }));
		document.getElementById('message').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`))
	waitPage(t, ann, "the refused upload", `document.querySelector('#uploads .upload.failed .up-state')?.textContent.startsWith('Not sent:')`)
	if eval[bool](t, ann, `!!document.querySelector('#uploads .upload.failed button.retry') || !document.querySelector('#uploads .upload.failed button.dismiss')`) {
		t.Fatal("a refused upload offers Retry, or no Dismiss")
	}
	// It belongs to its room: another room's composer does not show it.
	if code := postJSON(t, ann, "POST", "/rooms", `{"name":"Shed","kind":"open"}`); code != 201 {
		t.Fatalf("creating Shed: %d", code)
	}
	waitPage(t, ann, "Shed in Ann's list", `!!document.querySelector('#sidebar a.room-link[data-slug="shed"]')`)
	clickRoom(t, ann, "Shed")
	waitPage(t, ann, "Shed, without the lobby's failed upload", `location.pathname === "/r/shed" && document.getElementById('uploads').hidden`)
	clickRoom(t, ann, "Lobby")
	waitPage(t, ann, "the lobby, with its failed upload", `location.pathname === "/r/lobby" && !document.getElementById('uploads').hidden && !!document.querySelector('#uploads .upload.failed:not([hidden])')`)
	do(t, ann, chromedp.Click(chromedp.CSS(`#uploads .upload.failed button.dismiss`)))
	waitPage(t, ann, "the refused upload dismissed, its caption and reply back", `document.getElementById('uploads').hidden && document.getElementById('message').value === 'my picture' &&
		!document.getElementById('replying').hidden && document.getElementById('replying').textContent.includes('what were the minutes about?')`)
	eval[bool](t, ann, `(document.getElementById('message').value = '', document.querySelector('#replying button')?.click(), true)`)

	// Three files pasted at once: the server takes two of one person's at
	// a time (429 beyond), so the page sends two and queues the third.
	do(t, ann, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		for (const n of ['one.txt', 'two.txt', 'three.txt']) dt.items.add(new File([n], n, { type: 'text/plain' }));
		document.getElementById('message').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`))
	waitPage(t, bob, "the three pasted files on Bob's page", `['one.txt', 'two.txt', 'three.txt'].every(n => [...document.querySelectorAll('#messages .file-name')].some(e => e.textContent === n))`)
	waitPage(t, ann, "the three uploads done", `document.getElementById('uploads').hidden`)

	// The history the server renders shows them as the live page did.
	do(t, bob, chromedp.Reload())
	connected(t, bob)
	waitPage(t, bob, "the reloaded picture", `(() => { const i = document.querySelector('#messages .file.picture img'); return !!i && i.complete && i.naturalWidth === 480; })()`)
	if got := eval[string](t, bob, picture); got != live {
		t.Errorf("the server renders the picture as\n%s\napp.js as\n%s", got, live)
	}
	if got := eval[string](t, bob, download); got != liveDownload {
		t.Errorf("the server renders the download as\n%s\napp.js as\n%s", got, liveDownload)
	}
}
