package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

var (
	binary = flag.String("porttrace", "../../bin/porttrace", "the porttrace binary to measure")
	rounds = flag.Int("rounds", 9, "rounds per loop; each runs every mode once, and medians are reported")
)

// A mode is how a loop runs: bare, or under porttrace with these flags.
type mode struct {
	name string
	args []string // nil: bare
}

var modes = []mode{
	{"bare", nil},
	{"traced", []string{}},
	{"port", []string{"--port", "1"}}, // a port nobody uses
}

var (
	extraMode   = flag.String("mode", "", "an extra mode: porttrace flags, space-separated, e.g. '--skip-hook tracepoint/'")
	extraBinary = flag.String("extra-binary", "", "run the extra mode with this porttrace binary (an A/B of two builds)")
	tiers       = flag.String("tiers", "", "also run traced in each of these hook tiers (space-separated: precise kprobe portable), in the same rounds")
)

type result struct {
	loop   string
	median map[string]float64 // mode → ns/op
	lost   uint64
}

var (
	resultsMu sync.Mutex
	results   []result
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *extraMode != "" || *extraBinary != "" {
		modes = append(modes, mode{"extra", append([]string{}, strings.Fields(*extraMode)...)})
	}
	for _, t := range strings.Fields(*tiers) {
		modes = append(modes, mode{"tier-" + t, []string{"--hooks", t}})
	}
	code := m.Run()
	printTable()
	os.Exit(code)
}

// tracer is a running porttrace writing JSON Lines to a file. A file, not a
// pipe: a reader in this process would compete with the loops for the CPU,
// and porttrace would block on the pipe — measuring the reader, not it.
type tracer struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    string
	nsKey  []byte
	inNS   uint64
	stop   map[string]any
	stderr bytes.Buffer
}

func startTracer(b testing.TB, binPath string, ns *nstest.Netns, args []string) *tracer {
	b.Helper()
	bin, err := filepath.Abs(binPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("no porttrace binary at %s: run 'make build' or give -porttrace", bin)
	}
	t := &tracer{nsKey: []byte(fmt.Sprintf(`"netns":%d`, ns.Inode)), out: filepath.Join(b.TempDir(), "trace.jsonl")}
	f, err := os.Create(t.out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	args = append(append([]string{"--format", "json", "--no-existing"}, strings.Fields(os.Getenv("PORTTRACE_BENCH_ARGS"))...), args...)
	t.cmd = exec.Command(bin, args...)
	t.cmd.Stdout = f
	t.cmd.Stderr = &t.stderr
	if err := t.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	t.exited = exited
	go func() { t.cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if data, _ := os.ReadFile(t.out); bytes.HasPrefix(data, []byte(`{"event":"start"`)) && bytes.IndexByte(data, '\n') > 0 {
			return t
		}
		select {
		case <-exited:
			b.Fatalf("porttrace did not start: %s", t.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("porttrace wrote no start event in 10s: %s", t.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// written counts the allocations and releases of the loops' namespace in
// the output so far.
func (t *tracer) written() int {
	data, _ := os.ReadFile(t.out)
	n := 0
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.Contains(line, t.nsKey) && (bytes.HasPrefix(line, []byte(`{"event":"alloc"`)) || bytes.HasPrefix(line, []byte(`{"event":"release"`))) {
			n++
		}
	}
	return n
}

// finish stops porttrace, counts the events of the loops' namespace, and
// returns the lost count of its stop event.
func (t *tracer) finish(b testing.TB) uint64 {
	b.Helper()
	t.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-t.exited:
	case <-time.After(30 * time.Second):
		t.cmd.Process.Kill()
		b.Fatalf("porttrace did not stop within 30s of SIGINT")
	}
	if !t.cmd.ProcessState.Success() {
		b.Fatalf("porttrace failed: %s: %s", t.cmd.ProcessState, t.stderr.String())
	}
	f, err := os.Open(t.out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte(`{"event":"start"`)) || bytes.HasPrefix(line, []byte(`{"event":"free"`)) ||
			bytes.HasPrefix(line, []byte(`{"event":"slow"`)) {
			continue // the start lists every namespace; free and slow are derived in user space
		}
		if bytes.Contains(line, t.nsKey) {
			t.inNS++
		} else if bytes.HasPrefix(line, []byte(`{"event":"stop"`)) {
			json.Unmarshal(line, &t.stop)
		}
	}
	if t.stop == nil {
		b.Fatalf("porttrace wrote no stop event: %s", t.stderr.String())
	}
	lost, _ := t.stop["lost"].(float64)
	return uint64(lost)
}

func benchNS(b *testing.B) *nstest.Netns {
	nstest.RequireRoot(b)
	ns := nstest.New(b, 32768, 60999)
	// Client TIME_WAIT entries may be reused on loopback, or the TCP loop
	// would run the range dry.
	if out, err := ns.Command("sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1").CombinedOutput(); err != nil {
		b.Fatalf("sysctl: %v %s", err, out)
	}
	return ns
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func benchLoop(b *testing.B, l loop) {
	ns := benchNS(b)
	if b.N < 1000 { // the calibration call: do not spend rounds on it
		return
	}
	per := map[string][]float64{}
	var lost uint64
	for r := 0; r < *rounds; r++ {
		for _, m := range modes {
			var tr *tracer
			if m.args != nil {
				bin := *binary
				if m.name == "extra" && *extraBinary != "" {
					bin = *extraBinary
				}
				tr = startTracer(b, bin, ns, m.args)
			}
			var ns_op float64
			var err error
			ns.Do(b, func(int) {
				op, teardown, serr := l.setup()
				if serr != nil {
					err = serr
					return
				}
				defer teardown()
				n := b.N * max(l.scale, 1)
				t0 := time.Now()
				for i := 0; i < n; i++ {
					if err = op(); err != nil {
						return
					}
				}
				ns_op = float64(time.Since(t0).Nanoseconds()) / float64(n)
			})
			if tr != nil {
				lost += tr.finish(b)
			}
			if err != nil {
				b.Fatalf("%s (%s): %v", l.name, m.name, err)
			}
			per[m.name] = append(per[m.name], ns_op)
		}
	}
	res := result{loop: l.name, median: map[string]float64{}, lost: lost}
	for _, m := range modes {
		res.median[m.name] = median(per[m.name])
		b.ReportMetric(res.median[m.name], m.name+"-ns/op")
	}
	b.ReportMetric(res.median["traced"]/res.median["bare"], "traced/bare")
	b.ReportMetric(res.median["port"]/res.median["bare"], "port/bare")
	b.ReportMetric(float64(lost), "lost")
	resultsMu.Lock()
	results = append(results, res)
	resultsMu.Unlock()
}

func BenchmarkTCPConnectClose(b *testing.B)   { benchLoop(b, loops[0]) }
func BenchmarkUDPSendtoClose(b *testing.B)    { benchLoop(b, loops[1]) }
func BenchmarkBindZeroClose(b *testing.B)     { benchLoop(b, loops[2]) }
func BenchmarkSendtoBoundSocket(b *testing.B) { benchLoop(b, loops[3]) }

// BenchmarkAllocatingLoopsAtOnce runs the three allocating loops at once,
// flat out, under porttrace, and counts what reached its output: every
// allocation and release, or a lost count saying how many did not.
func BenchmarkAllocatingLoopsAtOnce(b *testing.B) {
	ns := benchNS(b)
	if b.N < 1000 {
		return
	}
	tr := startTracer(b, *binary, ns, []string{})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	t0 := time.Now()
	for _, l := range loops[:3] {
		wg.Add(1)
		go func(l loop) {
			defer wg.Done()
			ns.Do(b, func(int) {
				op, teardown, err := l.setup()
				if err != nil {
					errs <- err
					return
				}
				defer teardown()
				for i := 0; i < b.N; i++ {
					if err := op(); err != nil {
						errs <- fmt.Errorf("%s: %w", l.name, err)
						return
					}
				}
			})
		}(l)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	time.Sleep(500 * time.Millisecond) // let the reader catch up before SIGINT
	lost := tr.finish(b)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	want := uint64(3 * 2 * b.N)
	b.ReportMetric(float64(3*b.N)/elapsed.Seconds(), "allocs/s")
	b.ReportMetric(float64(tr.inNS), "events")
	b.ReportMetric(float64(want), "expected")
	b.ReportMetric(float64(lost), "lost")
	resultsMu.Lock()
	atOnce = fmt.Sprintf("three allocating loops at once: %d allocations in %v (%.0f/s); porttrace wrote %d of %d events, lost %d",
		3*b.N, elapsed.Round(time.Millisecond), float64(3*b.N)/elapsed.Seconds(), tr.inNS, want, lost)
	resultsMu.Unlock()
}

var atOnce string

func printTable() {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(results) == 0 && atOnce == "" && len(reportLines) == 0 {
		return
	}
	var b strings.Builder
	if len(results) > 0 {
		printLoops(&b)
	}
	if atOnce != "" {
		b.WriteString(atOnce + "\n")
	}
	for _, l := range reportLines {
		b.WriteString(l + "\n")
	}
	fmt.Print(b.String())
}

func printLoops(b *strings.Builder) {
	fmt.Fprintf(b, "\nMedians of %d rounds (ns per operation); added = traced - bare.\n", *rounds)
	fmt.Fprintf(b, "%-30s %10s %10s %9s %7s %12s %9s %7s %6s\n", "loop", "bare", "traced", "added", "ratio", "--port 1", "added", "ratio", "lost")
	for _, r := range results {
		bare, all, port := r.median["bare"], r.median["traced"], r.median["port"]
		fmt.Fprintf(b, "%-30s %10.0f %10.0f %+9.0f %7.3f %12.0f %+9.0f %7.3f %6d\n",
			r.loop, bare, all, all-bare, all/bare, port, port-bare, port/bare, r.lost)
		if x, ok := r.median["extra"]; ok {
			fmt.Fprintf(b, "%-30s %10s %10.0f %+9.0f %7.3f   (%s %s)\n", "", "extra:", x, x-bare, x/bare, *extraBinary, *extraMode)
		}
		for _, t := range strings.Fields(*tiers) {
			x := r.median["tier-"+t]
			fmt.Fprintf(b, "%-30s %10s %10.0f %+9.0f %7.3f\n", "", t+":", x, x-bare, x/bare)
		}
	}
}
