package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseReportFlags(t *testing.T) {
	var out, errb bytes.Buffer
	cfg, code, done := Parse([]string{"report", "a.jsonl", "b.jsonl.gz", "--port", "60698", "--since", "2026-11-25T03:00:00Z",
		"--until", "2026-11-25 03:30", "--format", "html", "-o", "r.html", "--comm", "curl"}, &out, &errb)
	if done {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rc := cfg.Report
	if cfg.Command != "report" || len(rc.Files) != 2 || rc.Format != "html" || rc.Output != "r.html" || !rc.Filter.Ports.Has(60698) ||
		!rc.Filter.Since.Equal(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)) || !rc.Filter.Until.Equal(time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC)) ||
		rc.Filter.Comms[0] != "curl" {
		t.Errorf("parsed %+v", cfg)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "no recording given"},
		{[]string{"report", "x", "--format", "pdf"}, `--format: "pdf"`},
		{[]string{"report", "x", "--since", "yesterday"}, "--since"},
		{[]string{"report", "x", "--since", "2026-11-25T04:00:00Z", "--until", "2026-11-25T03:00:00Z"}, "before --since"},
		{[]string{"report", "x", "--port", "0"}, "--port"},
	} {
		errb.Reset()
		if _, code, done := Parse(c.args, &out, &errb); !done || code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

func TestReportOnNothingReadable(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	bad := dir + "/junk.jsonl"
	writeFile(t, bad, "not a recording\n")
	err := RunReport(context.Background(), ReportConfig{Files: []string{bad}, Format: "text"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no porttrace records could be read") || !strings.Contains(errb.String(), "line 1") {
		t.Errorf("junk: %v, warnings %q", err, errb.String())
	}
	if err := RunReport(context.Background(), ReportConfig{Files: []string{dir + "/missing"}, Format: "text"}, &out, &errb); err == nil {
		t.Error("a missing file was accepted")
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
