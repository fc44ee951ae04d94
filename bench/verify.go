package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// historyPage is the most messages one history request may return.
const historyPage = 500

type storedMessage struct {
	ID      int64  `json:"id"`
	Message string `json:"message"`
}

var restClient = &http.Client{Timeout: 30 * time.Second}

// getMessages fetches a JSON array of messages.
func getMessages(ctx context.Context, u string) ([]storedMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := restClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	var msgs []storedMessage
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return msgs, nil
}

// latestID is the id of the newest stored message (0 in an empty room):
// history above it is what the run adds.
func latestID(ctx context.Context, base string) (int64, error) {
	msgs, err := getMessages(ctx, base+"/discussion/latest/1")
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	return msgs[len(msgs)-1].ID, nil
}

// verify pages through history newer than startID, newest first, with
// GET /discussion?before=&limit=, and checks that every message each sender
// sent (sequence numbers 0 to sent-1) is stored, once.
func verify(ctx context.Context, base string, startID int64, c *codec, sent []int64) (*VerifyResult, error) {
	found := make([][]uint64, len(sent))
	for i, n := range sent {
		found[i] = make([]uint64, (n+63)/64)
	}
	v := &VerifyResult{}
	for _, n := range sent {
		v.Sent += n
	}
	var before int64 // 0: the newest page
	for {
		u := base + "/discussion?limit=" + strconv.Itoa(historyPage)
		if before > 0 {
			u += "&before=" + strconv.FormatInt(before, 10)
		}
		page, err := getMessages(ctx, u)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if m.ID <= startID {
				continue
			}
			kind, s, seq, _ := c.parse([]byte(m.Message))
			if kind != dataText || s < 0 || s >= len(sent) || seq < 0 || seq >= sent[s] {
				continue
			}
			bit := uint64(1) << (seq % 64)
			if found[s][seq/64]&bit != 0 {
				v.DuplicatedInHistory++
				continue
			}
			found[s][seq/64] |= bit
			v.Found++
		}
		oldest := page[0].ID
		if oldest <= startID+1 {
			break
		}
		if before > 0 && oldest >= before {
			return nil, fmt.Errorf("GET %s: page does not go back (oldest id %d)", u, oldest)
		}
		before = oldest
	}
	v.Missing = v.Sent - v.Found
	for s, n := range sent {
		for seq := int64(0); seq < n && len(v.MissingExamples) < 5; seq++ {
			if found[s][seq/64]&(uint64(1)<<(seq%64)) == 0 {
				v.MissingExamples = append(v.MissingExamples, c.header(s, seq))
			}
		}
	}
	return v, nil
}
