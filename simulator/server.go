// Package simulator is llmprobe's reference inference endpoint: an
// OpenAI-compatible server (chat and completions in the format vLLM emits,
// Responses, and Anthropic's Messages, streamed or not) with a seeded latency model, a batch capacity with a
// FIFO queue, injectable faults, and ground-truth timestamps in every event
// so that a client's measurements can be checked against the server's.
package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBodyBytes bounds a request body; prompts are counted, not stored.
const maxBodyBytes = 16 << 20

// Server is a running simulated engine. Its handler is safe for concurrent
// use; Close stops it.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	model   *latencyModel
	metrics *metrics
	handler http.Handler

	seq     atomic.Uint64
	slots   chan struct{} // a token per running sequence; capacity = max_concurrency
	running atomic.Int64

	done      chan struct{}
	closeOnce sync.Once

	// alarm keeps an idle process waking often enough for Go timers to
	// fire on time while sequences run; nil where unavailable.
	alarm *wakeAlarm

	// traceEmit, when set (by tests, before serving), sees every scheduled
	// event: the model's schedule apart from the machine's timer noise.
	traceEmit func(seq uint64, admitted, sched, emitted time.Time)
	// beforeHandle, when set (by tests), runs at a completion handler's
	// entry, before its own clock reading: a late handler.
	beforeHandle func()
	// traceArrival, when set (by tests), sees each completion request's
	// arrival beside the handler's own clock reading at entry.
	traceArrival func(arrival, handlerNow time.Time, kernel bool)

	modelJSON []byte // the model name as a JSON string, escaped once
	bufs      sync.Pool
}

// New validates cfg and builds a server. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simulator config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	modelJSON, err := json.Marshal(cfg.Model)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		logger:    logger,
		model:     newLatencyModel(&cfg),
		metrics:   newMetrics(cfg.Model),
		slots:     make(chan struct{}, cfg.MaxConcurrency),
		done:      make(chan struct{}),
		modelJSON: modelJSON,
	}
	s.alarm = newWakeAlarm()
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	mux := http.NewServeMux()
	for path, api := range map[string]apiKind{
		"/v1/chat/completions": apiChat,
		"/v1/completions":      apiCompletions,
		"/v1/messages":         apiMessages,
		"/v1/responses":        apiResponses,
	} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) { s.serveCompletion(w, r, api) })
	}
	mux.HandleFunc("GET /v1/models", s.serveModels)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.handler = mux
	return s, nil
}

// Handler serves every route: /v1/chat/completions, /v1/completions,
// /v1/messages (Anthropic), /v1/responses, /v1/models, /health and /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Config returns the configuration the server runs with.
func (s *Server) Config() Config { return s.cfg }

// Close stops the server: in-flight streams and queued requests end at
// once, new requests get 503, and the server's timer is released. It does
// not close listeners.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.alarm.close()
	})
}

func (s *Server) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Serve listens on listenAddr (":0" picks a port), serves the simulator and
// returns the bound address and a stop function (idempotent; also called
// when ctx ends) that closes streams and shuts the HTTP server down.
func Serve(ctx context.Context, listenAddr string, cfg Config, logger *slog.Logger) (string, func(), error) {
	s, err := New(cfg, logger)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return "", nil, err
	}
	return s.serve(ctx, ln)
}

// serve serves s on ln, its accepted connections stamped (see arrival.go).
func (s *Server) serve(ctx context.Context, ln net.Listener) (string, func(), error) {
	srv := &http.Server{
		Handler:           s.Handler(),
		ConnContext:       connContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(stampListener{ln, s}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("simulator stopped serving", "err", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			s.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
			<-served
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-served:
		}
	}()
	return ln.Addr().String(), stop, nil
}

func (s *Server) serveModels(w http.ResponseWriter, _ *http.Request) {
	type modelCard struct {
		ID          string  `json:"id"`
		Object      string  `json:"object"`
		Created     int64   `json:"created"`
		OwnedBy     string  `json:"owned_by"`
		Root        string  `json:"root"`
		Parent      *string `json:"parent"`
		MaxModelLen int     `json:"max_model_len"`
	}
	body := struct {
		Object string      `json:"object"`
		Data   []modelCard `json:"data"`
	}{"list", []modelCard{{ID: s.cfg.Model, Object: "model", Created: time.Now().Unix(), OwnedBy: "llmprobe", Root: s.cfg.Model, MaxModelLen: s.cfg.MaxOutputTokens}}}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers in OpenAI's error shape, as vLLM does.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	type apiError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    int     `json:"code"`
	}
	writeJSON(w, status, struct {
		Error apiError `json:"error"`
	}{apiError{Message: msg, Type: typ, Code: status}})
}

// formats are the wire protocols, by API.
var formats = [...]format{
	apiChat:        openAIFormat{api: apiChat},
	apiCompletions: openAIFormat{api: apiCompletions},
	apiMessages:    anthropicFormat{},
	apiResponses:   responsesFormat{},
}

func (s *Server) serveCompletion(w http.ResponseWriter, r *http.Request, api apiKind) {
	if s.beforeHandle != nil {
		s.beforeHandle()
	}
	handlerNow := time.Now()
	f := formats[api]
	if s.closed() {
		f.writeError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		f.writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	arrival, kernel := requestArrival(r, handlerNow)
	if s.traceArrival != nil {
		s.traceArrival(arrival, handlerNow, kernel)
	}
	p, err := f.parse(body, r.Header, &s.cfg)
	if err != nil {
		status := http.StatusBadRequest
		var br *badRequest
		if errors.As(err, &br) {
			status = br.status
		}
		f.writeError(w, status, err.Error())
		return
	}

	seq := s.seq.Add(1)
	rng := s.model.rng(seq)
	fault := s.model.pickFault(rng)
	if h := r.Header.Get(FaultHeader); h != "" {
		k, ok := parseFaultKind(h)
		if !ok {
			f.writeError(w, http.StatusBadRequest, "unknown "+FaultHeader+" value")
			return
		}
		fault = k
	}
	if fault != faultNone {
		s.metrics.faults[fault].Inc()
	}
	if s.answerHTTPFault(w, f, fault) {
		return
	}

	st := &stream{s: s, f: f, api: api, p: p, seq: seq, fault: fault, rng: rng, arrival: arrival, ctx: r.Context(), w: w}
	if fl, ok := w.(http.Flusher); ok {
		st.flusher = fl
	}
	st.drip = fault == faultDrip
	s.metrics.promptToks.Add(float64(p.inputTokens))

	if p.stream {
		// Headers go out at arrival, before any queue wait, as vLLM's
		// StreamingResponse sends them: TTFB says nothing about the engine.
		h := w.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		st.flush()
	}
	if !s.admit(st) {
		return
	}
	defer s.release()
	if p.stream {
		st.runStream()
	} else {
		st.runWhole()
	}
}

// answerHTTPFault replies to the HTTP-level faults and reports whether it did.
func (s *Server) answerHTTPFault(w http.ResponseWriter, f format, fault faultKind) bool {
	if fault < faultRateLimit || fault > faultUnavailable {
		return false
	}
	retryAfter := strconv.FormatInt(int64(math.Ceil(time.Duration(s.cfg.Faults.RetryAfter).Seconds())), 10)
	switch fault {
	case faultRateLimit:
		w.Header().Set("Retry-After", retryAfter)
		f.writeError(w, http.StatusTooManyRequests, "simulated rate limit")
	case faultServerError:
		f.writeError(w, http.StatusInternalServerError, "simulated internal error")
	case faultUnavailable:
		w.Header().Set("Retry-After", retryAfter)
		f.writeError(w, http.StatusServiceUnavailable, "simulated overload")
	default:
		return false
	}
	return true
}

// admit waits, in arrival order, for a batch slot. It returns false when the
// client went away or the server closed first.
func (s *Server) admit(st *stream) bool {
	select {
	case s.slots <- struct{}{}:
	default:
		s.metrics.waiting.Inc()
		select {
		case s.slots <- struct{}{}:
			s.metrics.waiting.Dec()
		case <-st.ctx.Done():
			s.metrics.waiting.Dec()
			return false
		case <-s.done:
			s.metrics.waiting.Dec()
			return false
		}
	}
	st.admitted = time.Now()
	if s.running.Add(1) == 1 {
		s.updateAlarm()
	}
	s.metrics.running.Inc()
	s.metrics.queue.Observe(st.admitted.Sub(st.arrival).Seconds())
	return true
}

func (s *Server) release() {
	if s.running.Add(-1) == 0 {
		s.updateAlarm()
	}
	s.metrics.running.Dec()
	<-s.slots
}

// updateAlarm ticks the wake alarm while any sequence runs.
func (s *Server) updateAlarm() {
	s.alarm.update(func() bool { return s.running.Load() > 0 })
}

// abortConn resets the client's TCP connection (RST, not FIN): what a
// crashed engine or a killed proxy looks like to the client.
func abortConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := unwrapConn(conn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
			return
		}
	}
	// HTTP/2 or a wrapped writer: abort the response the only other way.
	panic(http.ErrAbortHandler)
}
