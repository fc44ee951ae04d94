package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// Centrifugo's client protocol, JSON flavour (github.com/centrifugal/protocol,
// client.proto), as much of it as a run needs: so that NoChat can be compared
// with the best-known Go real-time server, with the same generator counting
// the same way. Each client connects (no token: the server's channel
// options must let clients subscribe and publish, see bench/centrifugo.json),
// subscribes to one channel and publishes the bench text as the data of a
// publication, {"t": TEXT}; the publications come back as pushes. Centrifugo
// writes several replies and pushes into one WebSocket frame, a JSON object
// a line: each line is read.

// ProtoCentrifugo is Centrifugo's JSON client protocol.
const ProtoCentrifugo = "centrifugo"

// centrifugoChannel is the channel every client subscribes and publishes to.
const centrifugoChannel = "chat"

// centrifugoHandshake connects and subscribes conn, reading the server's
// replies, before the client's reader starts.
func centrifugoHandshake(ctx context.Context, conn *websocket.Conn) error {
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetReadDeadline(deadline)
	defer conn.SetReadDeadline(time.Time{})
	for id, cmd := range []string{
		`{"id":1,"connect":{"name":"nochat-bench"}}`,
		`{"id":2,"subscribe":{"channel":"` + centrifugoChannel + `"}}`,
	} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
			return err
		}
		for answered := false; !answered; {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return err
			}
			for line := range bytes.SplitSeq(b, []byte("\n")) {
				if bytes.Equal(bytes.TrimSpace(line), []byte("{}")) { // a ping
					if err := conn.WriteMessage(websocket.TextMessage, []byte("{}")); err != nil {
						return err
					}
					continue
				}
				var reply struct {
					ID    int `json:"id"`
					Error *struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &reply) != nil || reply.ID != id+1 {
					continue
				}
				if reply.Error != nil {
					return fmt.Errorf("centrifugo refused %s: %d %s", cmd, reply.Error.Code, reply.Error.Message)
				}
				answered = true
			}
		}
	}
	return nil
}

var (
	centrifugoPush  = []byte(`{"push":`)
	centrifugoText  = []byte(`"t":"`)
	centrifugoReply = []byte(`{"id":`)
)

// handleCentrifugo reads a Centrifugo frame: its lines, each a reply, a
// push or a ping ({}), which is answered.
func (c *client) handleCentrifugo(b []byte) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		switch {
		case len(bytes.TrimSpace(line)) == 0:
		case bytes.Equal(bytes.TrimSpace(line), []byte("{}")):
			c.write([]byte("{}")) // the server's ping: a pong
		case bytes.HasPrefix(line, centrifugoPush):
			i := bytes.Index(line, centrifugoText)
			if i < 0 {
				c.foreign++
				continue
			}
			// The bench text needs no escaping: it ends at the next quote.
			text := line[i+len(centrifugoText):]
			if j := bytes.IndexByte(text, '"'); j >= 0 {
				text = text[:j]
			}
			c.handleText(text)
		case bytes.HasPrefix(line, centrifugoReply):
			id, _ := strconv.ParseInt(string(line[len(centrifugoReply):bytes.IndexAny(line, ",}")]), 10, 64)
			switch {
			case id >= centrifugoWarmupID:
				// a warm-up's: not counted
			case bytes.Contains(line, []byte(`"error"`)):
				if c.serverErrors == nil {
					c.serverErrors = make(map[string]int64)
				}
				c.serverErrors["centrifugo"]++
			default:
				c.acks++
			}
		default:
			c.foreign++
		}
	}
}

// centrifugoWarmupID is the first command id of warm-up publications,
// above any measured one's.
const centrifugoWarmupID = 1 << 30

// appendCentrifugoPublish appends a publish command of text, with id.
func appendCentrifugoPublish(dst []byte, id int64, text func([]byte) []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"publish":{"channel":"`+centrifugoChannel+`","data":{"t":"`...)
	dst = text(dst)
	return append(dst, `"}}}`...)
}
