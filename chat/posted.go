package chat

import "nochat/db"

// PostedFunc is told of a new message after the broadcaster handed it to
// every live client. It runs on the broadcaster, so it must not block: it
// queues, or drops and counts (as outhook.Sender.Posted does).
type PostedFunc func(m db.Message)
