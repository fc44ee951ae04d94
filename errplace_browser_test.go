package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// The dashboard's recent errors say where each happened, in a table on a
// wide screen and as cards on a phone, without sideways scrolling there.
func TestBrowserDashboardErrorsShowWhere(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_ADMIN_PASSWORD": adminPassword})
	resp, err := http.PostForm(s.url+"/admin/login", url.Values{"password": {"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", s.url+"/", nil)
	req.Host = "attacker.example"
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	browserAdminLogin(t, browser, s)

	places := `[...document.querySelectorAll('#errors td.place')].map(td => td.textContent).sort().join(', ')`
	for _, width := range []int64{1280, 390} {
		do(t, browser, chromedp.EmulateViewport(width, 900), chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("errors")))
		if got, want := eval[string](t, browser, places), "HTTP host check, admin login"; got != want {
			t.Fatalf("at %d px the errors show places %q, want %q", width, got, want)
		}
		if !eval[bool](t, browser, `[...document.querySelectorAll('#errors td.place')].every(td => td.getBoundingClientRect().width > 0)`) {
			t.Fatalf("at %d px a place is not shown", width)
		}
		if eval[bool](t, browser, `(s => s.scrollWidth > s.clientWidth)(document.getElementById('errors').parentElement)`) {
			t.Fatalf("at %d px the recent errors scroll sideways", width)
		}
	}
	if got := eval[string](t, browser, `getComputedStyle(document.querySelector('#errors thead')).display`); got != "none" {
		t.Fatalf("at 390 px the errors are a table (thead display %q), want cards", got)
	}
}
