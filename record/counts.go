package record

// ProbeCounts are one probe's schedule books in one worker, cumulative since
// the worker started. They balance: Scheduled = Sent + Dropped, and Sent =
// the records emitted + InFlight.
type ProbeCounts struct {
	Scheduled, Sent, Dropped, Late uint64
	InFlight                       int64
}
