package serve

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// Counts is what the collector reads from the kernel at each scrape: a
// *tracer.Tracer.
type Counts interface {
	Counters() (*tracer.Counters, error)
	Lost() uint64
}

// The labels every per-namespace series has. pod and namespace name the
// Kubernetes pod of a namespace; they are empty until porttrace learns them.
var nsLabels = []string{"netns", "pod", "namespace"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string(nil), nsLabels...), labels...), nil)
}

var (
	descRange    = desc("porttrace_port_range_ports", "Ports in the namespace's ephemeral range (ip_local_port_range), reserved ports left out.", "proto")
	descInUse    = desc("porttrace_ports_in_use", "Ports of the ephemeral range in use: held by sockets (state=socket, counted in the kernel), or only by TIME_WAIT entries (state=time_wait, from the last scan).", "proto", "state")
	descAllocs   = desc("porttrace_port_allocations_total", "Local ports allocated, by how they were asked for: connect, sendmsg (UDP autobind), bind, listen.", "proto", "via")
	descFails    = desc("porttrace_port_allocation_failures_total", "Calls that could not get a local port, by how they asked and the error.", "proto", "via", "errno")
	descHold     = desc("porttrace_port_hold_seconds", "How long ports were held, from allocation to release (ports held before porttrace started are left out).", "proto")
	descDestMax  = desc("porttrace_destination_ports_in_use_max_ratio", "Share of the range used toward the busiest destination (address and port): what connect() runs out of first.", "proto")
	descHolders  = desc("porttrace_holder_ports_in_use", "Ports of the range held by each of the biggest holders (container, or process name outside containers); the rest summed as holder=\"other\".", "holder")
	descLost     = prometheus.NewDesc("porttrace_events_lost_total", "Events the kernel could not queue for porttrace (the ring buffer was full).", nil, nil)
	descBuild    = prometheus.NewDesc("porttrace_build_info", "porttrace's version and the hook tier in use; always 1.", []string{"version", "tier"}, nil)
	descScanTime = prometheus.NewDesc("porttrace_scan_timestamp_seconds", "When the last scan of every namespace's sockets (ranges, TIME_WAIT, destinations, holders) finished.", nil, nil)
	descScanDur  = prometheus.NewDesc("porttrace_scan_duration_seconds", "How long the last scan of every namespace took.", nil, nil)
)

// Workloads names the pod a network namespace belongs to, and the
// container of a cgroup: a *workload.Resolver.
type Workloads interface {
	ForNetns(inode uint32) tracer.Workload
	Lookup(id uint64, path string) tracer.Workload
}

// Collector serves porttrace's metrics to Prometheus.
type Collector struct {
	src        Counts
	version    string
	tier       string
	topHolders int
	host       uint32
	pods       Workloads // nil: pod and namespace stay empty

	mu       sync.Mutex
	scan     []NS
	scanned  time.Time
	scanTook time.Duration
}

// NewCollector exports src's counts; SetScan adds what scans find.
func NewCollector(src Counts, version, tier string, topHolders int) *Collector {
	return &Collector{src: src, version: version, tier: tier, topHolders: topHolders, host: hostNetns()}
}

// SetWorkloads fills the pod and namespace labels from w.
func (c *Collector) SetWorkloads(w Workloads) { c.pods = w }

// labels are a namespace's series labels: netns, pod, namespace, then more.
func (c *Collector) labels(ino uint32, more ...string) []string {
	var w tracer.Workload
	if c.pods != nil && ino != c.host {
		w = c.pods.ForNetns(ino)
	}
	return append([]string{netnsLabel(ino, c.host), w.Pod, w.Namespace}, more...)
}

// SetScan replaces what the last scan found; it ended at at and took took.
func (c *Collector) SetScan(nss []NS, at time.Time, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scan, c.scanned, c.scanTook = nss, at, took
}

// Describe sends nothing: the series come and go with namespaces, so the
// collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

var protos = []tracer.Proto{tracer.TCP, tracer.UDP}

// Collect reads the kernel's counts and sends every series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.version, c.tier)
	ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(c.src.Lost()))
	cnt, err := c.src.Counters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descAllocs, err)
		return
	}
	c.mu.Lock()
	scan, scanned, took := c.scan, c.scanned, c.scanTook
	c.mu.Unlock()
	if !scanned.IsZero() {
		ch <- prometheus.MustNewConstMetric(descScanTime, prometheus.GaugeValue, float64(scanned.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(descScanDur, prometheus.GaugeValue, took.Seconds())
	}
	seen := map[tracer.NSProto]bool{}
	for _, n := range scan {
		for _, p := range protos {
			k := tracer.NSProto{NetNS: n.Inode, Proto: p}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(descRange, prometheus.GaugeValue, float64(n.Size), c.labels(n.Inode, p.String())...)
			ch <- prometheus.MustNewConstMetric(descInUse, prometheus.GaugeValue, float64(max(cnt.Held[k], 0)), c.labels(n.Inode, p.String(), "socket")...)
			ch <- prometheus.MustNewConstMetric(descInUse, prometheus.GaugeValue, float64(n.TimeWait[p]), c.labels(n.Inode, p.String(), "time_wait")...)
			if n.Size > 0 {
				ch <- prometheus.MustNewConstMetric(descDestMax, prometheus.GaugeValue, float64(n.DestMax[p])/float64(n.Size), c.labels(n.Inode, p.String())...)
			}
		}
		if c.topHolders > 0 {
			for h, v := range topHolders(n.Holders, c.topHolders) {
				ch <- prometheus.MustNewConstMetric(descHolders, prometheus.GaugeValue, float64(v), c.labels(n.Inode, h)...)
			}
		}
	}
	// A namespace born since the last scan: its sockets are counted already.
	for k, v := range cnt.Held {
		if !seen[k] && (k.Proto == tracer.TCP || k.Proto == tracer.UDP) {
			ch <- prometheus.MustNewConstMetric(descInUse, prometheus.GaugeValue, float64(max(v, 0)), c.labels(k.NetNS, k.Proto.String(), "socket")...)
		}
	}
	for _, e := range cnt.Events {
		if e.Errno == 0 {
			ch <- prometheus.MustNewConstMetric(descAllocs, prometheus.CounterValue, float64(e.Count), c.labels(e.NetNS, e.Proto.String(), e.Via.String())...)
		} else {
			ch <- prometheus.MustNewConstMetric(descFails, prometheus.CounterValue, float64(e.Count), c.labels(e.NetNS, e.Proto.String(), e.Via.String(), output.ErrnoName(e.Errno))...)
		}
	}
	for _, h := range cnt.Holds {
		ch <- holdHistogram(&h, c.labels(h.NetNS, h.Proto.String()))
	}
}

func holdHistogram(h *tracer.HoldHist, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(tracer.HoldBounds))
	var cum uint64
	for i, b := range tracer.HoldBounds {
		cum += h.Buckets[i]
		buckets[b.Seconds()] = cum
	}
	total := cum + h.Buckets[len(h.Buckets)-1]
	return prometheus.MustNewConstHistogram(descHold, total, h.Sum.Seconds(), buckets, labels...)
}
