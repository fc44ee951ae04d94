package cluster

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"nochat/db"
)

// What a publish's error tells the writer: unavailable (publish again,
// then tell the sender to resend) or the server's refusal as it is. A
// stream leader that lost its leadership answers 500 with error code
// 10009, and an entry published again while its first publication waits
// for a quorum 409 with 10158; both were refusals, and a sender on a node
// cut off was told its message could not be stored (store_failed)
// instead of unavailable.
func TestWhichPublishErrorsAreUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{&jetstream.APIError{Code: 500, ErrorCode: errCodeNotLeader, Description: "JetStream cluster can not handle request"}, true},
		{fmt.Errorf("publish: %w", &jetstream.APIError{Code: 500, ErrorCode: errCodeNotLeader}), true},
		{&jetstream.APIError{Code: 409, ErrorCode: errCodeInProcess, Description: "duplicate message id is in process"}, true},
		{errors.New("nats: timeout"), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10060, Description: "expected stream does not match"}, false},
		{&jetstream.APIError{Code: 500, ErrorCode: 10049, Description: "message size exceeds maximum allowed"}, false},
	} {
		if got := errors.Is(unavailable(c.err), db.ErrUnavailable); got != c.want {
			t.Errorf("unavailable(%v) is ErrUnavailable: %v, want %v", c.err, got, c.want)
		}
	}
}
