//go:build linux

package prober

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

const starveServerEnv = "LLMPROBE_TEST_STARVE_SERVER"

// TestMain turns the test binary into the starved-reader test's server when
// asked to: the server must run in a process of its own, which the client's
// starvation does not reach.
func TestMain(m *testing.M) {
	if os.Getenv(starveServerEnv) == "1" {
		starveServer()
		return
	}
	os.Exit(m.Run())
}

// starveServer serves SSE streams whose text events carry their emit wall
// time, stamped right before their write, on loopback; it exits when its
// stdin closes (the test ended) or after a minute.
func starveServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	go func() { time.Sleep(time.Minute); os.Exit(0) }()
	fmt.Println(ln.Addr().String())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"stream":true`) {
			// A non-streamed reply, written in one write 25 ms later,
			// carrying the server's own arrival-to-write time as its
			// ground truth.
			time.Sleep(25 * time.Millisecond)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"t0 t1"}}],"usage":{"prompt_tokens":1,"completion_tokens":2},"llmprobe_ttft_ns":%d}`, time.Since(arrived))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		// Events 25 ms apart, longer than the client's starvation (one
		// 10 ms preemption slice): a read that arrives late still gets one
		// event. A read that gets two carries the later one's stamp (the
		// kernel stamps a read with its last segment's arrival).
		for i := range 4 {
			time.Sleep(25 * time.Millisecond)
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}],\"llmprobe_emit_ns\":%d}\n\n", i, time.Now().UnixNano())
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
}

// TestStarvedReaderKernelStampsHold: with the client starved (GOMAXPROCS 1
// and a goroutine that never yields; the Go scheduler preempts it only every
// 10 ms), the reading goroutine gets the bytes late. On the same events of
// the same requests, the kernel-stamped first-token time stays close to the
// server's emit (the ground truth: TTFT's error is exactly receive − emit,
// both counted from the one send instant) while the user-space time carries
// the starvation. Not timed against the machine: the server runs in its own
// process, and the two sources are compared on the same reads.
func TestStarvedReaderKernelStampsHold(t *testing.T) {
	url := startStarveServer(t)
	c := newTestClient(t, url, "", func(tg *config.Target) { tg.Timestamps = "kernel" })
	req := Request{Prompt: "p", MaxTokens: 4, Stream: true}
	res := &Result{}
	// Opens the connection and lets the kernel turn receive stamping on.
	c.Do(context.Background(), req, res)
	defer starve(t)()

	const requests = 20
	var kernelErr, userErr []time.Duration
	coalesced := 0
	for i := range requests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.Do(ctx, req, res)
		cancel()
		if res.Outcome != OutcomeSuccess || !res.KernelStamps {
			t.Fatalf("request %d: outcome %v, kernel stamps %v", i, res.Outcome, res.KernelStamps)
		}
		if len(res.EmitLags) == 0 || len(res.ReadLags) != len(res.EmitLags) {
			continue // a read without a kernel stamp: nothing to compare
		}
		if res.Coalesced > 0 {
			coalesced++
		}
		kernelErr = append(kernelErr, res.EmitLags[0])
		userErr = append(userErr, res.EmitLags[0]+res.ReadLags[0])
	}
	if len(kernelErr) < requests*3/4 {
		t.Fatalf("only %d of %d requests had kernel stamps on every event", len(kernelErr), requests)
	}
	slices.Sort(kernelErr)
	slices.Sort(userErr)
	q := func(s []time.Duration, f float64) time.Duration { return s[int(f*float64(len(s)-1))] }
	t.Logf("first-token receive − emit over %d requests (%d with coalesced reads), p50/p90/max: kernel %v/%v/%v, user %v/%v/%v",
		len(kernelErr), coalesced, q(kernelErr, .5), q(kernelErr, .9), q(kernelErr, 1), q(userErr, .5), q(userErr, .9), q(userErr, 1))
	if p90 := q(kernelErr, .9); p90 > time.Millisecond {
		t.Errorf("kernel-stamped TTFT error p90 %v: want within 1ms of the emit", p90)
	}
	if p50 := q(userErr, .5); p50 <= time.Millisecond {
		t.Errorf("user-space TTFT error p50 %v: the starved reader did not show (is the starvation working?)", p50)
	}
}

// startStarveServer runs the starved-reader tests' server in a process of
// its own and returns its URL.
func startStarveServer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), starveServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error") {
		t.Fatalf("server: %q %v", line, err)
	}
	return "http://" + strings.TrimSpace(line)
}

// starve starves this process' goroutines (GOMAXPROCS 1 and a goroutine
// that never yields; the Go scheduler preempts it only every 10 ms) until
// the returned function is called.
func starve(t *testing.T) (end func()) {
	t.Helper()
	procs := runtime.GOMAXPROCS(1)
	stop := make(chan struct{})
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 1e7; i++ { // no call, no yield: only async preemption stops it
			}
		}
	}()
	return func() { close(stop); <-spun; runtime.GOMAXPROCS(procs) }
}

// TestStarvedReaderNonStreamedEnd: a non-streamed reply ends at the kernel's
// receive stamp of its last byte, so a starved reader does not add its
// starvation to E2E; the same requests with user-space stamps, under the
// same starvation, do. The error is E2E minus the server's own time from
// the request's arrival to its one write (the server runs in a process of
// its own), and the two sources are compared side by side, not against the
// machine.
func TestStarvedReaderNonStreamedEnd(t *testing.T) {
	url := startStarveServer(t)
	clients := map[string]*Client{}
	for _, src := range []string{"kernel", "user"} {
		clients[src] = newTestClient(t, url, "", func(tg *config.Target) { tg.Timestamps = src })
	}
	req := Request{Prompt: "p", MaxTokens: 2}
	res := &Result{}
	for _, c := range clients {
		c.Do(context.Background(), req, res) // opens the connection
	}
	end := starve(t)
	const requests = 20
	errs := map[string][]time.Duration{}
	for i := range requests {
		for src, c := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.Do(ctx, req, res)
			cancel()
			if res.Outcome != OutcomeSuccess || res.KernelStamps != (src == "kernel") || !res.GroundTruth {
				end()
				t.Fatalf("%s request %d: outcome %v (%s), kernel stamps %v, ground truth %v", src, i, res.Outcome, res.Detail, res.KernelStamps, res.GroundTruth)
			}
			errs[src] = append(errs[src], res.E2E-res.ServerTTFT)
		}
	}
	end()
	q := func(s []time.Duration, f float64) time.Duration { return s[int(f*float64(len(s)-1))] }
	for _, e := range errs {
		slices.Sort(e)
	}
	k, u := errs["kernel"], errs["user"]
	t.Logf("E2E − the server's arrival-to-write over %d requests each, p50/p90/max: kernel %v/%v/%v, user %v/%v/%v",
		requests, q(k, .5), q(k, .9), q(k, 1), q(u, .5), q(u, .9), q(u, 1))
	if q(u, .5) <= time.Millisecond {
		t.Errorf("user-space E2E error p50 %v: the starved reader did not show (is the starvation working?)", q(u, .5))
	}
	if q(k, .5)*4 > q(u, .5) {
		t.Errorf("kernel-stamped E2E error p50 %v, not under a quarter of the user-space one's %v under the same starvation", q(k, .5), q(u, .5))
	}
}
