package handlers_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"nochat/handlers"
)

// A login whose form does not arrive before the body deadline is a timed-out
// request: answered 408 and not counted as a guess, so that slow or cut-off
// requests cannot close the login gate on the real admin.
func TestLoginBodyTimeoutIsNotAGuess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs several loopback addresses (Linux)")
	}
	a := newAppWith(t, func(d *handlers.Deps) { d.BodyTimeout = 200 * time.Millisecond })
	addr := strings.TrimPrefix(a.srv.URL, "http://")

	// Five logins whose body stops half-way: as many as the gate lets
	// fail before it makes everyone wait.
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second)) // bounds the test, not the server
			fmt.Fprintf(c, "POST /admin/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\npassword=wro")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("no answer: %v", err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "took too long") {
				errs <- fmt.Errorf("answered %d %q, want 408 saying the form took too long", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The admin, from another address, gets in at once: nothing was counted
	// at the gate (five failures would make the next check wait).
	client := &http.Client{
		Transport:     &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest("POST", a.srv.URL+"/admin/login", strings.NewReader(url.Values{"password": {adminPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := roundTrip(t, client, req); r.status != http.StatusSeeOther {
		t.Fatalf("the admin's login after the timed-out ones: %d, want 303 (a timed-out body was counted as a guess)", r.status)
	}
}
