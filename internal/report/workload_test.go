package report

import (
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

// A namespace's ports in use are its pod's, even when the process that took
// them (here a host process that entered it) is no container of the pod;
// runtime names are printed escaped.
func TestReportNamesPodsOfProcessesAndNamespaces(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	pod := tracer.Workload{Pod: "shop\x07", Namespace: "prod", Container: "web", PodUID: "u"}
	b := NewBuilder(Filter{})
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 9, Comm: "app", Port: 40001, Proto: tracer.TCP, NetNS: 7, Workload: pod})
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 10, Comm: "nsenter", Port: 40002, Proto: tracer.TCP, NetNS: 7})
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 11, Comm: "sshd", Port: 40003, Proto: tracer.TCP, NetNS: 8})
	r := b.Finish()
	var out strings.Builder
	if err := WriteText(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`app      1       0              0         -         -    -    1             0       prod/shop\x07/web`,
		"7      -     ?      2          prod/shop\\x07\n", "8      -     ?      1          -\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\x07") {
		t.Error("a pod's name reached the report unescaped")
	}
	b = NewBuilder(Filter{})
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 9, Comm: "app", Port: 40001, Proto: tracer.TCP, NetNS: 7,
		Workload: tracer.Workload{Pod: "<b>shop", Namespace: "prod", Container: "web"}})
	var page strings.Builder
	if err := WriteHTML(&page, b.Finish()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "<td>prod/&lt;b&gt;shop/web</td>") || strings.Contains(page.String(), "<b>shop") {
		t.Error("the HTML page does not name the pod, escaped, in its processes table")
	}
	f := Filter{}
	f.Workload.Pods = []string{"shop\x07"}
	b = NewBuilder(f)
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 9, Comm: "app", Port: 40001, Proto: tracer.TCP, NetNS: 7, Workload: pod})
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 11, Comm: "sshd", Port: 40003, Proto: tracer.TCP, NetNS: 8})
	if r := b.Finish(); len(r.Processes) != 1 || r.Processes[0].PID != 9 || r.Processes[0].Pod != "shop\x07" {
		t.Errorf("--pod kept %+v", r.Processes)
	}
}
