package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler handles one request. Handlers run on the connection's reader
// goroutine, one at a time in request order, so order-sensitive work (e.g.
// appending produced batches to a buffer) is done before returning. Work that
// must wait (durability, long polling) is returned as a deferred reply that
// the connection's writer goroutine waits on, in request order; meanwhile the
// reader keeps decoding and handling later requests (pipelining, bounded by
// Config.MaxInflight).
//
// The handler starts its response from req.ResponseKind(); the Server sets the
// response version to the request's and writes the correlation ID. Byte slices
// in req (e.g. produced record batches) alias the request's frame buffer,
// which the Server never reuses, so handlers may keep them. ctx is cancelled
// when the connection or the Server closes.
type Handler func(ctx context.Context, c *Conn, req kmsg.Request) Reply

type replyKind uint8

const (
	replyInvalid replyKind = iota // the zero Reply: a handler bug
	replyNow
	replyDeferred
	replyNone
	replyClose
)

// Reply is what a Handler returns: a response now (Respond), a response to
// wait for (Defer), nothing (NoResponse), or a request to close the
// connection (CloseConn). The zero Reply is invalid and closes the connection.
type Reply struct {
	kind   replyKind
	resp   kmsg.Response
	wait   func(ctx context.Context) kmsg.Response
	reason error
	// thenClose closes the connection once this reply is written; the
	// reader reads no more requests (a failed SASL authentication).
	thenClose bool
}

// Respond replies with resp, which is ready now.
func Respond(resp kmsg.Response) Reply { return Reply{kind: replyNow, resp: resp} }

// Defer replies with the response wait returns. The connection's writer calls
// wait in request order, after every earlier reply has been written; ctx is
// cancelled when the connection or the Server closes. A nil response closes
// the connection.
func Defer(wait func(ctx context.Context) kmsg.Response) Reply {
	return Reply{kind: replyDeferred, wait: wait}
}

// NoResponse sends nothing, e.g. for Produce with acks=0.
func NoResponse() Reply { return Reply{kind: replyNone} }

// CloseConn logs reason and closes the connection after earlier replies are
// written. The reader stops reading requests.
func CloseConn(reason error) Reply { return Reply{kind: replyClose, reason: reason} }
