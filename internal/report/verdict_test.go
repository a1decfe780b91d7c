package report

import (
	"strings"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/record"
)

// The verdict names what the figures include: read lag alone (measured on
// kernel-stamped events, whose times leave it out) reaches only coalesced
// ITL; any other signal means the figures include client delay.
func TestVerdictByReason(t *testing.T) {
	for _, tc := range []struct {
		name string
		whys []string
		want string
	}{
		{"healthy", []string{"", "", ""}, Trustworthy},
		{"read lag only", []string{"read lag p99 4.5ms over 80 kernel-stamped events", "read lag p99 5ms over 90 kernel-stamped events"}, "figures above include client delay only in the ITL"},
		{"late sends", []string{"11 of 12 sends were late", "11 of 12 sends were late"}, "figures above include client delay"},
		{"read lag and CPU", []string{"read lag p99 4.5ms over 80 kernel-stamped events", "CPU at 95% of 1 cores"}, "figures above include client delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCollector()
			for i, why := range tc.whys {
				c.Sample(0, &record.Sample{UnixNano: int64(i+1) * int64(time.Second), Saturated: why != ""}, why)
			}
			r := c.Build(Run{Started: time.Unix(0, 0), Duration: 3 * time.Second})
			if !strings.Contains(r.Verdict, tc.want) {
				t.Errorf("verdict %q, want it to say %q", r.Verdict, tc.want)
			}
			if tc.name == "read lag only" && r.Saturation.Workers[0].Reasons[ReasonReadLag] != 2 {
				t.Errorf("reasons %v, want read_lag 2", r.Saturation.Workers[0].Reasons)
			}
		})
	}
}
