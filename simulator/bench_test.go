package simulator

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// The benchmarks measure the server alone: the load comes from a second
// process (this test binary re-executed as TestBenchClientProcess), so that
// with -cpu 1 the simulator has exactly one core's worth of Go scheduler
// and the CPU it reports (getrusage) is its own.
const benchClientEnv = "LLMPROBE_SIM_BENCH_CLIENT"

// runStreams serves cfg and has the client process run `streams`
// concurrent streamed chat requests of perRequest tokens, back to back,
// until b.N × tokensPerOp tokens have been received.
func runStreams(b *testing.B, cfg Config, streams, perRequest, tokensPerOp int, noAlarm bool) *Server {
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if noAlarm {
		s.alarm.close()
		s.alarm = nil
	}
	ts := httptest.NewServer(s.Handler())
	defer func() { s.Close(); ts.Close() }()

	total := b.N * tokensPerOp
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchClientProcess$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d,%d,%d", benchClientEnv, ts.URL, streams, perRequest, total, time.Duration(cfg.ITL)))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	b.ReportAllocs()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("client: %v\n%s", err, out.String())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&m1)
	var received int
	if _, err := fmt.Sscanf(out.String()[strings.Index(out.String(), "received "):], "received %d", &received); err != nil || received != total {
		b.Fatalf("client received %d of %d tokens: %s", received, total, out.String())
	}
	b.ReportMetric(float64(received)/elapsed.Seconds(), "tokens/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "server-cpu-cores")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(received), "server-cpu-ns/token")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(received), "server-allocs/token")
	return s
}

// TestBenchClientProcess is the benchmarks' load generator; it does nothing
// unless a benchmark started it. It only counts `data: {` lines, to stay
// cheap, and checks each response's token count.
func TestBenchClientProcess(t *testing.T) {
	spec := os.Getenv(benchClientEnv)
	if spec == "" {
		return
	}
	f := strings.Split(spec, ",")
	url := f[0] + "/v1/chat/completions"
	streams, _ := strconv.Atoi(f[1])
	perRequest, _ := strconv.Atoi(f[2])
	total, _ := strconv.Atoi(f[3])
	itl, _ := strconv.ParseInt(f[4], 10, 64)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, MaxConnsPerHost: streams}}
	// Ramp up: stagger the first requests so that streams do not tick in
	// lockstep and connection setup is spread out.
	ramp := max(time.Duration(itl), 250*time.Millisecond)

	var remaining, received atomic.Int64
	remaining.Store(int64(total))
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(ramp * time.Duration(i) / time.Duration(streams))
			for {
				n := min(remaining.Add(-int64(perRequest))+int64(perRequest), int64(perRequest))
				if n <= 0 {
					return
				}
				body := fmt.Sprintf(`{"messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}`, n)
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				br := bufio.NewReaderSize(resp.Body, 16<<10)
				got := int64(-1) // the role chunk carries no token
				for {
					line, err := br.ReadSlice('\n')
					if bytes.HasPrefix(line, []byte("data: {")) {
						got++
					}
					if err != nil {
						break
					}
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if got != n {
					t.Errorf("got %d tokens, want %d", got, n)
				}
				received.Add(got)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("received %d\n", received.Load())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// latenessQuantile reads the simulator's own emit-lateness histogram and
// returns the upper bound of the bucket holding quantile q: a conservative
// estimate (the true quantile is at most this).
func latenessQuantile(b *testing.B, s *Server, q float64) float64 {
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "llmprobe_simulator_emit_lateness_seconds" {
			return bucketQuantile(mf.GetMetric()[0].GetHistogram(), q)
		}
	}
	b.Fatal("no lateness histogram")
	return 0
}

func bucketQuantile(h *dto.Histogram, q float64) float64 {
	want := q * float64(h.GetSampleCount())
	for _, bk := range h.GetBucket() {
		if float64(bk.GetCumulativeCount()) >= want {
			return bk.GetUpperBound()
		}
	}
	return math.Inf(1)
}

func benchConfig(itl time.Duration) Config {
	cfg := DefaultConfig()
	cfg.TTFT = ms(5)
	cfg.ITL = model.Duration(itl)
	cfg.MaxConcurrency = 1024
	return cfg
}

// BenchmarkStreamPaced: 220 streams at 4ms per token, requests of 100
// tokens back to back: 54,000 tokens/s scheduled (a little less delivered:
// TTFT, request turnaround and the ramp are included), and how late the
// simulator emits them. One op is 150,000 tokens, about 3s. alarm=off
// shows what the wake alarm is for.
func BenchmarkStreamPaced(b *testing.B) {
	for _, noAlarm := range []bool{false, true} {
		name := "alarm=on"
		if noAlarm {
			name = "alarm=off"
		}
		b.Run(name, func(b *testing.B) {
			s := runStreams(b, benchConfig(4*time.Millisecond), 220, 100, 150000, noAlarm)
			b.ReportMetric(latenessQuantile(b, s, 0.5)*1e3, "lateness-p50-ms")
			b.ReportMetric(latenessQuantile(b, s, 0.99)*1e3, "lateness-p99-ms")
		})
	}
}

// BenchmarkStreamUnpaced: no token interval; events go out as fast as the
// server can write them. One op is one token.
func BenchmarkStreamUnpaced(b *testing.B) {
	runStreams(b, benchConfig(0), 64, 1000, 1, false)
}

// BenchmarkEmitPath is the per-event cost of the simulator's own code: one
// long unpaced stream into a writer that discards, no network. allocs/op
// is per event.
func BenchmarkEmitPath(b *testing.B) {
	cfg := benchConfig(0)
	cfg.MaxOutputTokens = math.MaxInt32
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := fmt.Sprintf(`{"messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}`, b.N)
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	s.Handler().ServeHTTP(w, req)
	b.StopTimer()
	if w.events != b.N+2 { // role chunk and [DONE] besides the tokens
		b.Fatalf("%d events for %d tokens", w.events, b.N)
	}
}

// BenchmarkEmitPathFormats is BenchmarkEmitPath for the other wire
// formats: the per-event cost stays allocation-free in each.
func BenchmarkEmitPathFormats(b *testing.B) {
	for _, tc := range []struct {
		name, path, body string
		hdr              map[string]string
		extraEvents      int // events besides the text ones
	}{
		{"messages", "/v1/messages", `{"model":"llmprobe-sim","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}`, map[string]string{"anthropic-version": "2023-06-01"}, 6},
		{"responses", "/v1/responses", `{"input":"hi","stream":true,"max_output_tokens":%d}`, nil, 8},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := benchConfig(0)
			cfg.MaxOutputTokens = math.MaxInt32
			s, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(fmt.Sprintf(tc.body, b.N)))
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			s.Handler().ServeHTTP(w, req)
			b.StopTimer()
			if w.events != b.N+tc.extraEvents {
				b.Fatalf("%d events for %d tokens", w.events, b.N)
			}
		})
	}
}

type discardWriter struct {
	h      http.Header
	events int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Flush()              {}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.events++
	return len(p), nil
}
