package report

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

// A million distinct processes and two million holds never released, over
// a thousand namespaces and years: the report's memory stays bounded, what
// did not fit is summed up and said, and the page stays small.
func TestMemoryBoundedWhateverTheInput(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds three million events")
	}
	b := NewBuilder(Filter{})
	var peak uint64
	var ms runtime.MemStats
	measure := func() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	const procs, open = 1000000, 2000000
	for i := 0; i < procs; i++ {
		at := time.Duration(i) * time.Millisecond
		b.Add(ev(tracer.KindAlloc, at, uint32(i+1), "p", 40000))
		b.Add(release(at+time.Microsecond, time.Microsecond, uint32(i+1), "p", 40000))
		if i%200000 == 0 {
			measure()
		}
	}
	for i := 0; i < open; i++ {
		e := ev(tracer.KindAlloc, time.Duration(i)*time.Hour, 7, "holder", uint16(i))
		e.NetNS = uint32(i % 1000)
		b.Add(e)
		if i%200000 == 0 {
			measure()
		}
	}
	r := b.Finish()
	measure()
	var page bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	measure()
	t.Logf("peak heap %d MiB, page %d KiB, %d processes listed", peak>>20, page.Len()>>10, len(r.Processes))
	if peak > 256<<20 {
		t.Errorf("peak heap %d MiB; want at most 256", peak>>20)
	}
	if len(r.Processes) != MaxProcesses+1 || r.Processes[0].Comm != OtherProcesses && r.Processes[1].Comm != OtherProcesses {
		t.Errorf("%d processes listed, first %+v", len(r.Processes), r.Processes[0])
	}
	limits := strings.Join(r.Limits, "\n")
	for _, want := range []string{"More than 50000 processes", "More than 300000 ports were held at once", "More than 256 network namespaces"} {
		if !strings.Contains(limits, want) {
			t.Errorf("limits do not say %q:\n%s", want, limits)
		}
	}
	if page.Len() > 8<<20 {
		t.Errorf("the page is %d MiB", page.Len()>>20)
	}
	if !strings.Contains(page.String(), "more are left out") {
		t.Error("the page does not say how many processes it left out")
	}
}
