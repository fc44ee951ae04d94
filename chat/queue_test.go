package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A "messages" frame is built in a buffer from batchPool, sized for the
// largest frame of two or more messages: the message that would take a
// frame past maxBatchBytes waits for the next frame, and the buffer does
// not grow (larger buffers made for such frames, and kept in the pool,
// were what pooling was to avoid).
func TestAMessagesFrameFitsItsPooledBuffer(t *testing.T) {
	message := func(id int, size int) []byte {
		return fmt.Appendf(nil, `{"type":"message","data":{"id":%d,"message":%q}}`, id, strings.Repeat("x", size))
	}
	var wait [][]byte
	for i := range 15 {
		wait = append(wait, message(i+1, 1000)) // about 15 KiB in all
	}
	wait = append(wait, message(16, 6000)) // past maxBatchBytes: the next frame's
	for range 3 {
		frame, n, buf := batchMessages(wait)
		if n != 15 {
			t.Fatalf("the frame carries %d messages, want 15", n)
		}
		if len(frame) > maxBatchBytes {
			t.Fatalf("the frame is %d bytes, over maxBatchBytes (%d)", len(frame), maxBatchBytes)
		}
		if buf == nil || cap(*buf) != maxBatchBytes {
			t.Fatalf("built in a buffer of %d bytes, want the pool's %d", cap(*buf), maxBatchBytes)
		}
		var f struct {
			Type string
			Data []json.RawMessage
		}
		if err := json.Unmarshal(frame, &f); err != nil || f.Type != "messages" || len(f.Data) != 15 ||
			!bytes.Contains(f.Data[14], []byte(`"id":15`)) {
			t.Fatalf("the frame reads %q with %d messages (%v)", f.Type, len(f.Data), err)
		}
		putBatch(buf)
	}
}
