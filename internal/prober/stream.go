package prober

import (
	"context"
	"errors"
	"io"
	"time"
)

// readStream reads an SSE response and fills res. It returns the error that
// ended the stream, if any, for logging.
func (c *Client) readStream(ctx context.Context, body io.Reader, sent time.Time, res *Result, st *doState) error {
	sse, ch := st.sse, &st.chunk
	sse.Reset(body)
	defer sse.Reset(nil) // do not keep the body reachable from the pool
	if st.stampConn != nil {
		sse.StampFrom(st.stampConn, &st.guard)
	}

	var (
		textChunks     int64
		counted        int64
		last           time.Time // stamp of the previous text-bearing event
		lastRead       uint64    // the read that delivered it
		groupGap       bool      // its chunk (events of one read) has a gap in res.Gaps
		groupSize      int32     // text-bearing events in that chunk
		continuous     bool      // per-chunk usage from the first text chunk on
		prevCompletion int64
		completion     int64
		endErr         error
		// finished: a chunk carried a finish_reason, so the generation is
		// complete; stopped: the reason was a natural stop, whose EOS token
		// servers count in usage but send no text for.
		finished, stopped bool
	)
	for {
		ev, err := sse.Next()
		if err != nil {
			endErr = err
			end := sse.LastRead()
			switch {
			case errors.Is(err, ErrEventTooLarge):
				res.Outcome = OutcomeProtocolError
			case err == io.EOF && finished:
				// TGI before 2.1 ends a complete stream without [DONE].
				res.Outcome = OutcomeSuccess
			case err == io.EOF:
				res.Outcome = OutcomeTruncated
			default:
				res.Outcome = classify(ctx, err, true)
				end = time.Now() // the failure
			}
			if end.IsZero() {
				end = time.Now()
			}
			res.E2E = end.Sub(sent)
			break
		}
		if ev.Done {
			res.Outcome = OutcomeSuccess
			res.E2E = ev.Time.Sub(sent)
			sse.Drain(maxDoneDrain)
			break
		}
		if err := c.api.parseEvent(ev.Data, ch); err != nil || ch.Error {
			if err == nil {
				err = errors.New("error event in stream")
				res.Detail = c.detail(serverMessage(ev.Data))
			}
			endErr = err
			res.Outcome = OutcomeProtocolError
			res.E2E = ev.Time.Sub(sent)
			break
		}
		if ch.HasServerTTFT {
			res.ServerTTFT = time.Duration(ch.ServerTTFTNs)
		}
		if ch.HasServerQueue {
			res.ServerQueue = time.Duration(ch.ServerQueueNs)
		}
		if ch.HasText() {
			tokens := int64(1)
			if textChunks == 0 {
				res.TTFT = ev.Time.Sub(sent)
				// Per-chunk usage that counts (vLLM's continuous usage
				// stats); Ollama's completions put a zero usage on every
				// chunk, which does not.
				continuous = ch.HasUsage && ch.CompletionTokens > 0
			}
			if continuous && ch.HasUsage {
				// Cumulative usage per chunk: this chunk's share.
				if d := ch.CompletionTokens - prevCompletion; d > 1 {
					tokens = d
				}
			}
			switch {
			case textChunks > 0 && ev.Read == lastRead:
				// One read delivered several text events: they arrived
				// together, so they are one chunk of their tokens, not
				// gaps of zero.
				if groupGap {
					res.Gaps[len(res.Gaps)-1].Tokens += int32(tokens)
				}
				if groupSize++; groupSize == 2 {
					res.Coalesced += 2
				} else {
					res.Coalesced++
				}
			case textChunks > 0:
				res.Gaps = append(res.Gaps, Gap{Gap: ev.Time.Sub(last), Tokens: int32(tokens)})
				groupGap, groupSize = true, 1
			default:
				groupGap, groupSize = false, 1
			}
			last, lastRead = ev.Time, ev.Read
			textChunks++
			counted += tokens
			if ev.Kernel {
				res.ReadLags = append(res.ReadLags, ev.Lag)
			}
			if ch.HasEmit {
				res.GroundTruth = true
				// Wall clock on both sides: the one place wall time is
				// right, since the server's clock is only known as wall.
				res.EmitLags = append(res.EmitLags, time.Duration(ev.Wall-ch.EmitNs))
			}
		}
		if len(ch.FinishReason) > 0 {
			finished = true
			stopped = naturalStop(ch.FinishReason)
		}
		if ch.HasPrompt {
			res.InputTokens = int32(ch.PromptTokens)
		}
		if ch.HasUsage {
			res.UsageReported = true
			completion = ch.CompletionTokens
			prevCompletion = ch.CompletionTokens
		}
		if ch.Done {
			// The API's own end event, in place of [DONE].
			res.Outcome = OutcomeSuccess
			res.E2E = ev.Time.Sub(sent)
			sse.Drain(maxDoneDrain)
			break
		}
	}

	res.CountedTokens = int32(counted)
	res.OutputTokens = int32(counted)
	if res.UsageReported {
		res.OutputTokens = int32(completion)
		// Servers that batch k tokens per chunk without per-chunk usage:
		// if the total is an exact multiple, every chunk carried k.
		if !continuous && textChunks > 0 && completion > textChunks && completion%textChunks == 0 {
			k := int32(completion / textChunks)
			for i := range res.Gaps {
				res.Gaps[i].Tokens *= k // a coalesced chunk holds several events of k
			}
			res.CountedTokens = int32(completion)
		}
		// A natural stop's EOS token is in usage but was sent as no text
		// (vLLM, TGI, llama.cpp): one more than counted is agreement.
		res.UsageMismatch = int64(res.CountedTokens) != completion && !(stopped && completion == int64(res.CountedTokens)+1)
	}
	return endErr
}
