package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/pressure"
	"github.com/porttrace/porttrace/internal/serve"
	"github.com/porttrace/porttrace/tracer"
)

// ServeConfig is what `porttrace serve` was asked for; the recording,
// buffer and hook flags are in Config.
type ServeConfig struct {
	Listen       string
	LogFormat    string // "", text or json
	TopHolders   int
	ScanInterval time.Duration
}

const serveUsageHead = `Usage: sudo porttrace serve [flags]

Runs until SIGTERM, serving Prometheus metrics of every network namespace's
ephemeral range on http://LISTEN/metrics: range size, ports in use (by
sockets and by TIME_WAIT), allocations and failures, hold times, the busiest
destination's share of the range, and optionally the biggest holders.
Allocations are counted in the kernel; only failures reach porttrace, unless
-o records every event. /healthz answers while it runs, /readyz once every
hook is attached.

Flags:
`

func parseServe(args []string, stdout, stderr io.Writer) (Config, int, bool) {
	fs, fail := newCommand("porttrace serve", stderr)
	listen := fs.String("listen", ":9477", "serve /metrics, /healthz and /readyz on `ADDRESS` (host:port; an empty host is every address)")
	rf := addRecordFlags(fs, "also record every event, as JSON Lines, to `FILE` (mode 0600; never overwritten without --force)")
	logFormat := fs.String("log-format", "none", "write events to standard output as `FORMAT`: none, text or json (JSON Lines, for log shippers): failures, or with -o every event")
	topN := fs.Int("top-holders", 0, "export the ports held by the `N` biggest holders of each namespace (container, or process name), the rest as holder=\"other\"")
	scan := fs.Duration("scan-interval", 15*time.Second, "read ranges, TIME_WAIT entries, destinations and holders of every namespace every `DURATION`")
	buf := fs.String("buffer", "4M", "kernel ring buffer `SIZE`, a power of two; 32M when -o records every event")
	hooks := fs.String("hooks", "auto", "hook `TIER`: auto, precise, kprobe or portable (see porttrace --help)")
	cri := criSocketFlag(fs)
	verbose := fs.BoolP("verbose", "v", false, "say on stderr which hooks are attached and why that tier was chosen")
	prof := fs.String("cpuprofile", "", "write a Go CPU profile of porttrace itself to `FILE`")
	fs.MarkHidden("cpuprofile")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fail(flagError(err))
	}
	if *help {
		fmt.Fprint(stdout, serveUsageHead+flagUsages(fs))
		return Config{}, 0, true
	}
	if fs.NArg() > 0 {
		return fail(usageErrorf("unexpected argument %q: porttrace serve takes only flags", fs.Arg(0)))
	}
	cfg := Config{Command: "serve"}
	if _, port, err := net.SplitHostPort(*listen); err != nil {
		return fail(usageErrorf("--listen: %q is not host:port: write it as :9477 or 127.0.0.1:9477", *listen))
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fail(usageErrorf("--listen: %q is not a port number from 1 to 65535", port))
	}
	switch *logFormat {
	case "none":
	case "text", "json":
		cfg.Serve.LogFormat = *logFormat
	default:
		return fail(usageErrorf("--log-format: %q is not a format: use none, text or json", *logFormat))
	}
	if *topN < 0 || *topN > 100 {
		return fail(usageErrorf("--top-holders: %d is not from 0 to 100", *topN))
	}
	if *scan < 100*time.Millisecond {
		return fail(usageErrorf("--scan-interval: %s is too short: give 100ms or more", *scan))
	}
	size, err := parseSize(*buf)
	if err != nil {
		return fail(usageErrorf("--buffer: %v", err))
	}
	if err := rf.apply(&cfg); err != nil {
		return fail(err)
	}
	if cfg.Output != "" && !fs.Changed("buffer") {
		size = 32 << 20 // every event, as the trace's default
	}
	if cfg.Hooks, err = parseHooks(*hooks); err != nil {
		return fail(err)
	}
	cfg.Serve.Listen, cfg.Serve.TopHolders, cfg.Serve.ScanInterval = *listen, *topN, *scan
	cfg.BufferSize, cfg.Verbose, cfg.CPUProfile, cfg.CRISocket = size, *verbose, *prof, *cri
	return cfg, 0, false
}

// RunServe serves metrics until ctx ends.
func RunServe(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	sc := cfg.Serve
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; give another --listen", sc.Listen, err)
	}
	var ready atomic.Bool
	var metrics atomic.Pointer[http.Handler]
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready: attaching hooks", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		h := metrics.Load()
		if h == nil {
			http.Error(w, "not ready: attaching hooks", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	// Without a recording, allocations and releases stay in the kernel, and
	// failures wake porttrace at once: it need not look every 100 ms.
	opts := tracer.Options{BufferSize: cfg.BufferSize, Hooks: cfg.Hooks, Count: true, FailuresOnly: cfg.Output == ""}
	tick := 200 * time.Millisecond
	if opts.FailuresOnly {
		opts.Poll, tick = time.Second, time.Second
	}
	ses, err := openSession(ctx, cfg, opts, stderr)
	if err != nil {
		return err
	}
	defer ses.close()
	rec, t, guard, pods, nss := ses.guard.rec, ses.t, ses.guard, ses.pods, ses.nss
	if err := pods.Warning(); err != nil {
		fmt.Fprintf(stderr, "porttrace: %s\n", output.Printable(podNotes(pods)[0]))
	}
	sink := newSink(sc.LogFormat, stdout, rec)
	defer sink.flush()
	began := time.Now()
	sink.write(&tracer.Event{Kind: tracer.KindStart, Time: began.UTC(), Start: &tracer.StartInfo{
		Version: Version(), Tier: t.Tier(), TierReason: t.TierReason(), Hooks: t.Hooks(), Filter: "all", Namespaces: nss, Notes: t.Notes(),
	}})
	if err := guard.commit(); err != nil {
		return err
	}
	var stats tracer.StopInfo
	emit := func(e *tracer.Event) {
		pods.Fill(e)
		addStat(&stats, e)
		sink.write(e)
	}
	// The scan also makes the kernel count the ports held before the start.
	existing, err := t.Existing()
	if err != nil {
		return err
	}
	for i := range existing {
		emit(&existing[i])
	}

	col := serve.NewCollector(t, Version(), t.Tier(), sc.TopHolders)
	col.SetWorkloads(pods)
	reg := prometheus.NewRegistry()
	reg.MustRegister(col, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	scanCtx, stopScans := context.WithCancel(ctx)
	defer stopScans()
	scans := scanLoop(scanCtx, t, col, pods, sc, stderr)
	defer func() { <-scans }()
	metrics.Store(&h)
	ready.Store(true)
	fmt.Fprintf(stderr, "porttrace serve: metrics on http://%s/metrics (%s hooks, %d attached); SIGTERM stops\n", ln.Addr(), t.Tier(), len(t.Hooks()))
	if cfg.Verbose {
		fmt.Fprintf(stderr, "porttrace: %s hooks: %s\n", t.Tier(), t.TierReason())
	}

	go func() {
		select {
		case <-ctx.Done():
		case err := <-served:
			served <- err
		}
		t.Stop()
	}()
	track := pressure.New(t, 0)
	defer track.Close()
	rerr := pump(t, track, tick, emit, sink.flush)
	stats.Duration = time.Since(began)
	sink.write(&tracer.Event{Kind: tracer.KindStop, Time: time.Now().UTC(), Stop: &stats})
	sink.flush()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			rerr = errors.Join(rerr, fmt.Errorf("serve metrics: %w", err))
		}
	default:
	}
	if rec != nil {
		rerr = errors.Join(rerr, guard.close())
	}
	fmt.Fprintf(stderr, "porttrace serve: stopped after %s; %d failures seen, %d events lost\n", stats.Duration.Round(time.Millisecond), stats.Fails, t.Lost())
	return rerr
}

// scanLoop scans every namespace now, then every interval, until ctx ends;
// the returned channel closes when it has stopped. Counts of namespaces
// gone in two scans in a row, with no socket left, are dropped from the
// kernel's maps.
func scanLoop(ctx context.Context, t *tracer.Tracer, col *serve.Collector, pods serve.Workloads, sc ServeConfig, stderr io.Writer) <-chan struct{} {
	var prev map[uint32]bool
	once := func() {
		began := time.Now()
		nss, err := serve.Scan(t, sc.TopHolders > 0, pods)
		if err != nil {
			fmt.Fprintf(stderr, "porttrace serve: %s; the next scan will try again\n", err)
			return
		}
		col.SetScan(nss, time.Now(), time.Since(began))
		// A scan reads every socket of every namespace (30,000 TIME_WAIT
		// entries took serve from 28 to 40 MiB resident), garbage once
		// summarized: give it back to the node now, not at the scavenger's
		// pace of minutes. It costs a collection of a small heap per scan.
		debug.FreeOSMemory()
		now := map[uint32]bool{}
		for _, n := range nss {
			now[n.Inode] = true
		}
		if c, err := t.Counters(); err == nil && prev != nil {
			gone := map[uint32]bool{}
			for _, e := range c.Events {
				if !now[e.NetNS] && !prev[e.NetNS] && c.Held[tracer.NSProto{NetNS: e.NetNS, Proto: e.Proto}] <= 0 {
					gone[e.NetNS] = true
				}
			}
			if len(gone) > 0 {
				t.Forget(gone)
			}
		}
		prev = now
	}
	once()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(sc.ScanInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				once()
			}
		}
	}()
	return done
}
