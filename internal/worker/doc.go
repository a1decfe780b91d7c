// Package worker decides where load runs and carries what it produces into
// the metrics. One worker loop (loop.go) runs a load.Runner and passes its
// sends, records and saturation samples to an output: in a worker process
// (--workers>0) frames on the pipe to the supervisor, which decodes them
// into an intake; in the daemon's own process (--workers=0) the intake
// itself. The intake is the one way records enter internal/metrics. The
// supervisor restarts worker processes that die or hang; Pool moves the
// load across reloads, probe by probe.
package worker
