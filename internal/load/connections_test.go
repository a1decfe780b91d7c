package load_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/prober/probertest"
)

// Closed loop against servers that close kept-alive connections without
// saying so (llama-server after each streamed reply; a short idle timeout):
// no request is counted as a connect_error, every retry is on the record,
// and the books balance exactly.
func TestClosedLoopAgainstServersThatClose(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode probertest.Mode
		idle time.Duration
	}{
		{"close after every response", probertest.CloseAfterResponse, 0},
		{"close on the next request", probertest.CloseOnNextRequest, 0},
		{"close when idle 1ms", probertest.CloseWhenIdle, time.Millisecond},
	} {
		for _, conc := range []int{1, 8} {
			t.Run(fmt.Sprintf("%s/concurrency %d", mode.name, conc), func(t *testing.T) {
				srv, err := probertest.Start(mode.mode, mode.idle, 4)
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: closing, url: %q, model: m}]
scenarios:
  - name: s
    load: {mode: closed, concurrency: %d}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [closing], scenarios: [s]}]
`, srv.URL, conc)), "")
				if err != nil {
					t.Fatal(err)
				}
				s, r := runSink(t, cfg, load.Options{Workers: 1, Drain: 5 * time.Second}, 700*time.Millisecond, nil)
				recs, sends := s.all(), s.sent()
				outcomes := map[prober.Outcome]int{}
				retries := 0
				for _, rec := range recs {
					outcomes[rec.Outcome]++
					if rec.Retry != prober.RetryNone {
						retries++
					}
				}
				t.Logf("%d requests, %d retried, %d connections, outcomes %v", len(recs), retries, srv.Conns.Load(), outcomes)
				if len(recs) < 10 {
					t.Fatalf("only %d requests in 700ms", len(recs))
				}
				if n := outcomes[prober.OutcomeConnectError]; n > 0 {
					t.Errorf("%d connect_errors against a server that answers every request it is sent on a live connection", n)
				}
				// Requests still in flight at the end are canceled, not failed.
				if ok := outcomes[prober.OutcomeSuccess] + outcomes[prober.OutcomeCanceled]; ok != len(recs) {
					t.Errorf("outcomes %v: want only success (and canceled at the stop)", outcomes)
				}
				if mode.mode == probertest.CloseOnNextRequest && retries == 0 {
					t.Errorf("no retries against a server that closes every reused connection")
				}
				books := firstBooks(r)
				if books.Sent != uint64(len(recs)) || books.Sent != uint64(len(sends)) || books.Scheduled != books.Sent+books.Dropped || books.InFlight != 0 {
					t.Errorf("books %+v with %d records and %d sends: want sent = records = sends, scheduled = sent + dropped, none in flight", books, len(recs), len(sends))
				}
				srv.Close() // its connection goroutines done: its counts are final
				// Each request was answered once: a retry never doubles the
				// load, and only requests the server left unanswered (or never
				// received) were retried.
				if got, want := srv.Answered.Load(), int64(outcomes[prober.OutcomeSuccess]); got != want {
					t.Errorf("the server answered %d requests; %d succeeded", got, want)
				}
				if unanswered := srv.Requests.Load() - srv.Answered.Load(); unanswered > int64(retries)+int64(outcomes[prober.OutcomeCanceled]) {
					t.Errorf("the server left %d requests unanswered; only %d were retried", unanswered, retries)
				}
			})
		}
	}
}
