package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

func TestServeBadFlagsExit2(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "9477"}, "--listen"},
		{[]string{"--listen", ":99999"}, "--listen"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--top-holders", "-1"}, "--top-holders"},
		{[]string{"--scan-interval", "1ms"}, "--scan-interval"},
		{[]string{"--rotate-size", "1M"}, "-o FILE"},
		{[]string{"--buffer", "3M"}, "--buffer"},
		{[]string{"--nope"}, "--nope"},
	} {
		out, errs, code := runBin(t, append([]string{"serve"}, c.args...)...)
		if code != 2 || out != "" || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") > 2 {
			t.Errorf("porttrace serve %v: exit %d, stderr %q; want exit 2 and a sentence naming %s", c.args, code, errs, c.want)
		}
		noStackTrace(t, errs)
	}
}

// A port someone else listens on is refused in a sentence, exit 1.
func TestServeListenTaken(t *testing.T) {
	addr, _, _, _ := startServe(t)
	_, errs, code := runBin(t, "serve", "--listen", addr)
	if code != 1 || !strings.Contains(errs, "isten on "+addr) || !strings.Contains(errs, "--listen") {
		t.Errorf("second serve on %s: exit %d, stderr %q; want exit 1 naming the address and --listen", addr, code, errs)
	}
	noStackTrace(t, errs)
}

// metricsText fetches porttrace serve's /metrics.
func metricsText(t *testing.T, addr string) string {
	t.Helper()
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// With -o, serve records every event, rotating the file; --top-holders
// exports the biggest holders by process name and sums the rest as other.
func TestServeRecordsAndTopHolders(t *testing.T) {
	ns := nstest.New(t, 40200, 40299)
	ns.ListenHold(t, "127.0.0.1:8080")
	dir := t.TempDir()
	file := filepath.Join(dir, "serve.jsonl")
	addr, serve, _, stderr := startServe(t, "--scan-interval", "200ms", "--top-holders", "1", "-o", file, "--rotate-size", "4K")

	// A second process name: python3 under another name.
	other := filepath.Join(dir, "pyholder")
	py, err := os.ReadFile("/usr/bin/python3")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, py, 0o700); err != nil {
		t.Fatal(err)
	}
	a := ns.Start(t, "python3", nstest.Script(), "hold-n", "127.0.0.1", "8080", "6")
	b := ns.Start(t, other, nstest.Script(), "hold-n", "127.0.0.1", "8080", "2")
	nstest.Next(t, a.Reports)
	nstest.Next(t, b.Reports)

	// The text format sorts labels by name.
	sel := fmt.Sprintf(`namespace="",netns="%d",pod=""`, ns.Inode)
	wantLines := []string{
		`porttrace_holder_ports_in_use{holder="python3",` + sel + `} 6`,
		`porttrace_holder_ports_in_use{holder="other",` + sel + `} 2`,
		`porttrace_ports_in_use{` + sel + `,proto="tcp",state="socket"} 8`,
	}
	deadline := time.Now().Add(nstest.Scaled(10 * time.Second))
	for {
		m := metricsText(t, addr)
		missing := ""
		for _, w := range wantLines {
			if !strings.Contains(m, w+"\n") {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no line %s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.Stdin.Close()
	b.Stdin.Close()
	a.Cmd.Wait()
	b.Cmd.Wait()
	time.Sleep(300 * time.Millisecond)
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("porttrace serve after SIGTERM: %v\n%s", err, stderr)
	}

	files, _ := filepath.Glob(file + "*")
	if len(files) < 2 {
		t.Fatalf("recording files %v: want %s and at least one rotated file", files, file)
	}
	kinds := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["netns"] == float64(ns.Inode) {
				kinds[fmt.Sprint(m["event"])]++
			}
		}
		fh.Close()
	}
	if kinds["alloc"] != 8 || kinds["release"] != 8 {
		t.Errorf("recorded for the namespace: %v; want 8 alloc and 8 release", kinds)
	}
}
