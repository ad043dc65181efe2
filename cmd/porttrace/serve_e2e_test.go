package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

// freePort is a loopback TCP port nobody listens on just now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, what string) {
	t.Helper()
	deadline := time.Now().Add(nstest.Scaled(30 * time.Second))
	for time.Now().Before(deadline) {
		if r, err := http.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s (%s) not ready within 30s", what, url)
}

// startServe runs porttrace serve on a free loopback port until the test
// ends, and waits until it is ready.
func startServe(t *testing.T, args ...string) (addr string, cmd *exec.Cmd, stdout, stderr *bytes.Buffer) {
	t.Helper()
	nstest.RequireRoot(t)
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd = exec.Command(binary, append([]string{"serve", "--hooks", nstest.Hooks(), "--listen", addr}, args...)...)
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/readyz", "porttrace serve")
	return addr, cmd, stdout, stderr
}

// rulesForTest is deploy/prometheus's rules with every for: cut to 2s.
func rulesForTest(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deploy", "prometheus", "porttrace-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "for: 5m", "for: 2s")
	if s == string(b) {
		t.Fatal("the rules have no 'for: 5m' to shorten")
	}
	return s
}

// startPrometheus runs Debian's prometheus on a free loopback port, scraping
// target every second and evaluating the rules every second.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is missing: install Debian's prometheus package (apt-get install prometheus), as .ci/run does")
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(rulesForTest(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: porttrace
    static_configs:
      - targets: [%q]
`, rules, target)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var log bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus said:\n%s", log.String())
		}
	})
	waitHTTP(t, "http://"+addr+"/-/ready", "prometheus")
	return addr
}

type promSample struct {
	Metric map[string]string
	Value  [2]any
}

// promQuery runs a PromQL query; Prometheus must accept it.
func promQuery(t *testing.T, prom, query string) []promSample {
	t.Helper()
	r, err := http.Get("http://" + prom + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var res struct {
		Status string
		Data   struct{ Result []promSample }
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &res); err != nil || res.Status != "success" {
		t.Fatalf("query %s: %v %s", query, err, b)
	}
	return res.Data.Result
}

// promValue is the value of a PromQL query that returns one series, or
// false while it returns none.
func promValue(t *testing.T, prom, query string) (float64, bool) {
	t.Helper()
	res := promQuery(t, prom, query)
	if len(res) != 1 {
		return 0, false
	}
	v, _ := strconv.ParseFloat(fmt.Sprint(res[0].Value[1]), 64)
	return v, true
}

// dashboardQueries are the PromQL queries of deploy/prometheus's Grafana
// dashboard, with its variables set as "All" and a 30 s rate interval.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deploy", "prometheus", "porttrace-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			q := strings.NewReplacer("$__rate_interval", "30s", "$instance", ".*").Replace(tg.Expr)
			out[fmt.Sprintf("%s #%d", p.Title, i)] = q
		}
	}
	if len(out) < 8 {
		t.Fatalf("the dashboard has %d queries", len(out))
	}
	return out
}

// alertState is the state of the alert named name whose netns label is
// netns ("" while there is none).
func alertState(t *testing.T, prom, name, netns string) string {
	t.Helper()
	r, err := http.Get("http://" + prom + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var res struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string
				State  string
			}
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Data.Alerts {
		if a.Labels["alertname"] == name && a.Labels["netns"] == netns {
			return a.State
		}
	}
	return ""
}

// A real Prometheus scrapes porttrace serve while a namespace's range runs
// dry: its metrics show the range full (sockets and TIME_WAIT), the failed
// connects and the one destination's share, and the exhaustion and failure
// alerts fire.
func TestServeWithPrometheus(t *testing.T) {
	ns := nstest.New(t, 40100, 40109)
	ns.ListenHold(t, "127.0.0.1:8080")
	addr, serve, stdout, stderr := startServe(t, "--scan-interval", "500ms", "--log-format", "json", "--top-holders", "3")
	prom := startPrometheus(t, addr)

	// Take all ten ports, close three (left in FIN_WAIT2: the server keeps
	// its side open), fail twice.
	ns.NoTimeWaitReuse(t) // the closed ports wait as timewait sockets: keep them blocked
	p := ns.Start(t, "python3", nstest.Script(), "fill", "127.0.0.1", "8080", "3")
	r := nstest.Next(t, p.Reports)
	if held, _ := r["held"].([]any); len(held) != 7 || fmt.Sprint(r["fails"]) != "[EADDRNOTAVAIL EADDRNOTAVAIL]" {
		t.Fatalf("sockets.py fill: %v", r)
	}

	sel := fmt.Sprintf(`netns="%d",proto="tcp"`, ns.Inode)
	want := map[string]float64{
		`porttrace_port_range_ports{` + sel + `}`:                                                   10,
		`porttrace_ports_in_use{` + sel + `,state="socket"}`:                                        7,
		`porttrace_ports_in_use{` + sel + `,state="time_wait"}`:                                     3,
		`porttrace_port_allocations_total{` + sel + `,via="connect"}`:                               10,
		`porttrace_port_allocation_failures_total{` + sel + `,via="connect",errno="EADDRNOTAVAIL"}`: 2,
		`porttrace_destination_ports_in_use_max_ratio{` + sel + `}`:                                 1,
		`porttrace_port_hold_seconds_count{` + sel + `}`:                                            3,
	}
	deadline := time.Now().Add(nstest.Scaled(30 * time.Second))
	for q, w := range want {
		for {
			v, ok := promValue(t, prom, q)
			if ok && v == w {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus: %s = %v (found: %v), want %v", q, v, ok, w)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	seen := map[string]string{}
	for _, alert := range []string{"PorttraceEphemeralPortsNearlyExhausted", "PorttracePortAllocationFailures", "PorttraceDestinationNearlyExhausted"} {
		for {
			s := alertState(t, prom, alert, fmt.Sprint(ns.Inode))
			if s != "" && seen[alert] == "" {
				seen[alert] = s // the first state Prometheus showed
			}
			if s == "firing" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("alert %s for netns %d: state %q, want firing", alert, ns.Inode, s)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("alerts first seen as: %v", seen)

	// Every panel of the dashboard has data for the namespace, or for the
	// host where it is not per namespace.
	for title, q := range dashboardQueries(t) {
		var found bool
		for _, r := range promQuery(t, prom, q) {
			found = found || r.Metric["netns"] == fmt.Sprint(ns.Inode) || r.Metric["netns"] == ""
		}
		if !found {
			t.Errorf("dashboard panel %q: no series for netns %d from %s", title, ns.Inode, q)
		}
	}

	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("porttrace serve after SIGTERM: %v\n%s", err, stderr)
	}
	// Without -o only failures reach user space: the log has two fail events
	// for the namespace and not one alloc.
	var fails int
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if m["event"] == "alloc" && m["via"] != "existing" || m["event"] == "release" {
			t.Errorf("an %s event reached user space without -o: %s", m["event"], l)
		}
		if m["event"] == "fail" && m["netns"] == float64(ns.Inode) {
			fails++
		}
	}
	if fails != 2 {
		t.Errorf("%d fail events for the namespace in the log, want 2", fails)
	}
	noStackTrace(t, stderr.String())
}
