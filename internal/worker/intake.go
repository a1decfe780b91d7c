package worker

import (
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/record"
)

// intake is the supervisor side of one worker incarnation, the one way its
// sends, records and samples enter the metrics: a worker process' frames
// are decoded into it, and in the daemon's own process it is the worker
// loop's output itself.
type intake struct {
	probes *probeTable
	worker *metrics.Worker
	books  *metrics.Books
	inc    *metrics.Incarnation
	cores  int         // the worker's usable cores
	live   func() bool // false once its generation is retired
	// open counts, per probe, requests sent and not yet recorded: those
	// left when a worker process dies were lost with it.
	open map[uint32]int64
	// tap, when set, sees what the metrics see; index names the worker to
	// it, and prev is the sample before, to say why a window was bad (the
	// worker's reason is not on the wire: it is judged again here with the
	// worker's thresholds).
	tap        Tap
	index      int
	thresholds Thresholds
	prev       record.Sample
}

func newIntake(probes *probeTable, w *metrics.Worker, cores int, live func() bool, tap Tap, index int, th Thresholds) *intake {
	return &intake{probes: probes, worker: w, books: metrics.NewBooks(probes.get), inc: w.Start(), cores: cores, live: live,
		open: map[uint32]int64{}, tap: tap, index: index, thresholds: th}
}

func (in *intake) send(s record.Send) error {
	if p := in.probes.get(s.Probe); p != nil {
		p.ObserveSend(s)
		in.open[s.Probe]++
	}
	in.worker.ObserveSend(s)
	if in.tap != nil {
		in.tap.Send(s)
	}
	return nil
}

func (in *intake) record(r *record.Record) error {
	if p := in.probes.get(r.Probe); p != nil {
		p.Observe(r)
		in.open[r.Probe]--
	}
	in.worker.Observe(r)
	if in.tap != nil {
		in.tap.Record(r)
	}
	return nil
}

func (in *intake) sample(s *record.Sample) error {
	in.books.Apply(s.Probes)
	in.inc.Apply(s, in.cores, in.live())
	if in.tap != nil {
		var why string
		if in.prev.UnixNano != 0 {
			_, why = in.thresholds.Judge(&in.prev, s, in.cores)
		}
		in.tap.Sample(in.index, s, why)
		probes := in.prev.Probes
		in.prev = *s
		in.prev.Probes = append(probes[:0], s.Probes...)
	}
	return nil
}

func (in *intake) flush() error   { return nil }
func (in *intake) backlog() int64 { return 0 }

// close ends the incarnation: what it said holds now (back-off, up) is
// withdrawn, and requests whose send it reported and whose record never
// came count as lost with it: sent, never to be measured. (A worker that
// stops as told, and the daemon's own loop, record every request first.)
func (in *intake) close() {
	in.books.Close()
	in.inc.End()
	var lost uint64
	for id, n := range in.open {
		if p := in.probes.get(id); p != nil && n > 0 {
			p.Lose(uint64(n))
			lost += uint64(n)
		}
	}
	in.worker.Lost.Add(float64(lost))
}
