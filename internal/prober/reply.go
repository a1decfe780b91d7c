package prober

import (
	"context"
	"errors"
	"io"
	"time"
)

var errBodyTooLarge = errors.New("response body too large")

// readJSON reads a non-streamed response. E2E is the arrival of its last
// byte; TTFT stays undefined.
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
			last = time.Now()
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
