package report

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no headless Chromium: apt-get install chromium (CI installs it)")
	return ""
}

func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("chromium took over 60s")
	}
	return out.Bytes()
}

// A report page, rendered by a real browser: the timeline's bars and failure
// marks are drawn, the tables are there, and nothing is fetched from
// elsewhere.
func TestHTMLRendersInChromium(t *testing.T) {
	bin := chromium(t)
	b := NewBuilder(Filter{})
	b.Add(tracer.Event{Kind: tracer.KindStart, Time: t0, Start: &tracer.StartInfo{Namespaces: []tracer.Namespace{{Inode: 1, Range: tracer.PortRange{Lo: 60000, Hi: 60009}}}}})
	holds := 0
	for i := 0; i < 30; i++ {
		pid := uint32(100 + i%3)
		comm := []string{"curl", "java", "dig"}[i%3]
		at := time.Duration(i) * 200 * time.Millisecond
		b.Add(ev(tracer.KindAlloc, at, pid, comm, uint16(60000+i%10)))
		if i < 25 {
			b.Add(release(at+500*time.Millisecond, 500*time.Millisecond, pid, comm, uint16(60000+i%10)))
		}
		holds++
	}
	for i := 0; i < 4; i++ {
		b.Add(tracer.Event{Kind: tracer.KindFail, Time: t0.Add(time.Duration(3000+i*300) * time.Millisecond), PID: 101, Comm: "java",
			Proto: tracer.TCP, NetNS: 1, Errno: syscall.EADDRNOTAVAIL, Via: tracer.ViaConnect})
	}
	r := b.Finish()
	r.Files = []string{"trace.jsonl"}
	r.Filter = "all"
	var page bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, bad := range []string{"<script", "<link", "src=", "url(", "@import", "https://"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page refers to something outside it: %q", bad)
		}
	}
	file := filepath.Join(t.TempDir(), "report.html")
	os.WriteFile(file, page.Bytes(), 0o644)

	dom := string(headless(t, bin, "--dump-dom", "file://"+file))
	if n := len(regexp.MustCompile(`<rect class="hold( open)?"`).FindAllString(dom, -1)); n != holds {
		t.Errorf("the rendered timeline has %d hold bars, want %d", n, holds)
	}
	if n := strings.Count(dom, `<line class="fail"`); n != 4 {
		t.Errorf("the rendered timeline has %d failure marks, want 4", n)
	}
	if !strings.Contains(dom, `<polyline class="occ"`) || !strings.Contains(dom, "range 60000-60009 (10 ports)") {
		t.Error("no occupancy curve for the range")
	}
	if n := strings.Count(dom, "EADDRNOTAVAIL"); n < 4 {
		t.Errorf("failures table shows %d rows", n)
	}

	shot := filepath.Join(t.TempDir(), "report.png")
	headless(t, bin, "--window-size=1200,900", "--screenshot="+shot, "file://"+file)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var blue, red int
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			r, g, b = r>>8, g>>8, b>>8
			switch {
			case near(r, 0x3b) && near(g, 0x78) && near(b, 0xc4):
				blue++
			case near(r, 0xdd) && near(g, 0x11) && near(b, 0x11):
				red++
			}
		}
	}
	if blue < 500 || red < 20 {
		t.Errorf("the screenshot shows %d pixels of hold bars and %d of failure marks: the timeline was not drawn", blue, red)
	}
}

func near(v, want uint32) bool { return v+12 >= want && v <= want+12 }
