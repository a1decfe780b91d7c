package prober

import (
	"context"
	"errors"
	"io"
	"time"
)

var errBodyTooLarge = errors.New("response body too large")

// readJSON reads a non-streamed response. E2E is the arrival of its last
// byte (the kernel's receive stamp on a stamped connection, as for a
// stream's events); TTFT stays undefined.
func (c *Client) readJSON(ctx context.Context, body io.Reader, sent time.Time, res *Result, st *doState) error {
	if st.buf == nil {
		st.buf = make([]byte, 0, 4<<10)
	}
	b := st.buf[:0]
	var last time.Time
	var err error
	for {
		if len(b) == cap(b) {
			if cap(b) >= maxJSONResponse {
				err = errBodyTooLarge
				break
			}
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = body.Read(b[len(b):cap(b)])
		if n > 0 {
			last = st.readTime()
			b = b[:len(b)+n]
		}
		if err != nil {
			break
		}
	}
	st.buf = b[:0]
	if err != io.EOF {
		if errors.Is(err, errBodyTooLarge) {
			res.Outcome = OutcomeProtocolError
		} else {
			res.Outcome = classify(ctx, err, true)
		}
		res.E2E = time.Since(sent)
		return err
	}
	if last.IsZero() {
		// No byte at all: the end is when the reader saw the body end.
		last = time.Now()
	}
	res.E2E = last.Sub(sent)
	var r reply
	if err := c.api.parseReply(b, &r); err != nil {
		res.Outcome = OutcomeProtocolError
		return err
	}
	if r.Error {
		res.Outcome = OutcomeProtocolError
		res.Detail = c.detail(serverMessage(b))
		return errors.New("error object in response")
	}
	res.Outcome = OutcomeSuccess
	if r.HasUsage {
		res.UsageReported = true
		res.InputTokens = int32(r.InputTokens)
		res.OutputTokens = int32(r.OutputTokens)
	}
	if r.HasServerTTFT {
		res.GroundTruth = true
		res.ServerTTFT = time.Duration(r.ServerTTFTNs)
	}
	if r.HasServerQueue {
		res.GroundTruth = true
		res.ServerQueue = time.Duration(r.ServerQueueNs)
	}
	return nil
}

// readTime is when the bytes of the body's latest Read arrived: on a stamped
// connection, the stamp of the connection's last read (the kernel's, unless
// the wall clock stepped); else now. A Read served from the transport's
// buffer returns bytes an earlier read brought, and that read's stamp is
// theirs.
func (st *doState) readTime() time.Time {
	if st.stampConn != nil {
		if t, _ := st.guard.Time(st.stampConn.LastReadStamp()); !t.IsZero() {
			return t
		}
	}
	return time.Now()
}
