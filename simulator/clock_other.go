//go:build !linux

package simulator

// wakeAlarm needs Linux's timerfd; elsewhere streams rely on Go timers
// alone (idle wake-ups may then be up to ~1ms late).
type wakeAlarm struct{}

func newWakeAlarm() *wakeAlarm          { return nil }
func (a *wakeAlarm) update(func() bool) {}
func (a *wakeAlarm) close()             {}
