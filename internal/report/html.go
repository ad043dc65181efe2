package report

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/porttrace/porttrace/internal/output"
)

// Geometry of the SVG pictures, in CSS pixels.
const (
	svgWidth   = 1100
	labelWidth = 190
	rowHeight  = 18
	laneHeight = 5
	maxLanes   = 12
	maxRows    = 40
	// maxTableRows bounds each table of the page: a million processes
	// would make a page no browser opens.
	maxTableRows = 2000
	occHeight    = 140
)

type bar struct {
	X, W, Y, H float64
	Title      string
	Class      string
}

type row struct {
	Label string
	Y     float64
	H     float64 // height of the row's band
	Bars  []bar
	Marks []bar
	lanes []time.Time // end of the last hold in each lane
}

// lane puts a hold in the first lane of the row free at its start, so holds
// at the same time stack instead of hiding each other.
func (r *row) lane(start, end time.Time) int {
	for i, e := range r.lanes {
		if !start.Before(e) {
			r.lanes[i] = end
			return i
		}
	}
	if len(r.lanes) < maxLanes {
		r.lanes = append(r.lanes, end)
		return len(r.lanes) - 1
	}
	return maxLanes - 1
}

type tick struct {
	X      float64
	Label  string
	Anchor string
}

type occChart struct {
	Title    string
	Points   string
	Cap      float64 // y of the range size, -1 if unknown or off the chart
	Height   int
	YTicks   []tick
	PeakText string
}

type page struct {
	R         *Report
	Rows      []row
	RowsNote  string
	Height    int
	PlotW     float64
	Ticks     []tick
	Occ       []occChart
	ProcsNote string
	Generated string
	Dur       func(time.Duration) string
}

// capTables returns r with its tables cut to maxTableRows rows; a port's
// table says how many holds it left out.
func capTables(r *Report) *Report {
	c := *r
	if len(c.Processes) > maxTableRows {
		c.Processes = c.Processes[:maxTableRows]
	}
	c.Ports = make([]Port, len(r.Ports))
	for i, pt := range r.Ports {
		if len(pt.Holds) > maxTableRows {
			pt.LeftOut = len(pt.Holds) - maxTableRows
			pt.Holds = pt.Holds[:maxTableRows]
		}
		c.Ports[i] = pt
	}
	return &c
}

// WriteHTML renders one self-contained page: no scripts, fonts or styles
// from elsewhere, so it can be attached to an incident document as it is.
func WriteHTML(w io.Writer, r *Report) error {
	p := page{R: capTables(r), PlotW: svgWidth - labelWidth - 10, Generated: time.Now().UTC().Format(time.RFC3339), Dur: output.Duration}
	if n := len(r.Processes) - len(p.R.Processes); n > 0 {
		p.ProcsNote = fmt.Sprintf("The %d processes with the most allocations are listed; %d more are left out (porttrace report --format text or json lists them all).", maxTableRows, n)
	}
	t0, span := r.Span.Start, r.Span.Duration
	if span <= 0 {
		span = time.Second
	}
	x := func(t time.Time) float64 {
		v := float64(t.Sub(t0)) / float64(span) * p.PlotW
		if v < 0 {
			v = 0
		}
		if v > p.PlotW {
			v = p.PlotW
		}
		return labelWidth + v
	}
	for i := 0; i <= 6; i++ {
		t := t0.Add(time.Duration(float64(span) * float64(i) / 6))
		anchor := "middle"
		if i == 6 {
			anchor = "end"
		}
		p.Ticks = append(p.Ticks, tick{X: x(t), Label: t.Format("15:04:05.000"), Anchor: anchor})
	}

	// One row per port under --port, otherwise one per holder process.
	byPort := len(r.Ports) > 0
	label := func(h Hold) string {
		if byPort {
			return fmt.Sprintf("port %d/%s", h.Port, h.Proto)
		}
		return fmt.Sprintf("%s (%d)", h.Comm, h.PID)
	}
	count := map[string]int{}
	for _, h := range r.Timeline {
		count[label(h)]++
	}
	for _, f := range r.Failures {
		if !byPort {
			count[fmt.Sprintf("%s (%d)", f.Comm, f.PID)] += 0
		}
	}
	labels := make([]string, 0, len(count))
	for l := range count {
		labels = append(labels, l)
	}
	sort.Slice(labels, func(i, j int) bool {
		if count[labels[i]] != count[labels[j]] {
			return count[labels[i]] > count[labels[j]]
		}
		return labels[i] < labels[j]
	})
	if len(labels) > maxRows {
		p.RowsNote = fmt.Sprintf("The %d busiest of %d rows are drawn.", maxRows, len(labels))
		labels = labels[:maxRows]
	}
	idx := map[string]int{}
	for i, l := range labels {
		idx[l] = i
		p.Rows = append(p.Rows, row{Label: l})
	}
	type placed struct{ row, lane, bar int }
	var holds []placed
	if r.Sampled {
		p.RowsNote += fmt.Sprintf(" A random sample of %d of the %d holds is drawn.", len(r.Timeline), r.HoldTotal)
	}
	for _, h := range r.Timeline {
		i, ok := idx[label(h)]
		if !ok {
			continue
		}
		end := h.End
		cls := "hold"
		how := endState(h)
		if end.IsZero() {
			end, cls, how = r.Span.End, "hold open", "still held at the end"
		}
		x0, x1 := x(h.Start), x(end)
		p.Rows[i].Bars = append(p.Rows[i].Bars, bar{X: x0, W: maxf(x1-x0, 1.5), Class: cls,
			Title: fmt.Sprintf("%s port %d/%s, %s → %s, held %s, %s", label(h), h.Port, h.Proto, h.Start.Format("15:04:05.000000"),
				end.Format("15:04:05.000000"), output.Duration(end.Sub(h.Start)), how)})
		holds = append(holds, placed{row: i, lane: p.Rows[i].lane(h.Start, end), bar: len(p.Rows[i].Bars) - 1})
	}
	// Rows are as tall as their lanes; bars take their lane's band.
	y := 30.0
	for i := range p.Rows {
		n := len(p.Rows[i].lanes)
		p.Rows[i].Y = y
		p.Rows[i].H = maxf(float64(n*laneHeight+2), rowHeight-4)
		y += p.Rows[i].H + 4
	}
	for _, pl := range holds {
		r := &p.Rows[pl.row]
		bh := r.H / float64(maxInt(len(r.lanes), 1))
		b := &r.Bars[pl.bar]
		b.Y = r.Y + float64(pl.lane)*bh
		b.H = maxf(bh-1, 1)
	}
	for _, f := range r.Failures {
		l := fmt.Sprintf("%s (%d)", f.Comm, f.PID)
		i, ok := idx[l]
		if byPort || !ok {
			i, ok = 0, len(p.Rows) > 0
		}
		if !ok {
			continue
		}
		p.Rows[i].Marks = append(p.Rows[i].Marks, bar{X: x(f.Time), Title: fmt.Sprintf("%s %s (%d) %s %s at %s", f.Errno, f.Comm, f.PID, f.Via, dash(f.Remote), f.Time.Format("15:04:05.000000"))})
	}
	p.Height = int(y) + 20

	for _, rs := range r.Ranges {
		p.Occ = append(p.Occ, occupancyChart(rs, x, p.PlotW))
	}

	return pageTemplate.Execute(w, p)
}

func occupancyChart(rs RangeSeries, x func(time.Time) float64, plotW float64) occChart {
	size := 0
	if rs.Range[0] != 0 {
		size = int(rs.Range[1]) - int(rs.Range[0]) + 1
	}
	top := rs.Peak
	if size > 0 && size <= 4*rs.Peak+4 {
		top = size // the range is within sight: draw its ceiling
	}
	if top < 1 {
		top = 1
	}
	y := func(v int) float64 { return 10 + float64(occHeight-20)*(1-float64(v)/float64(top)) }
	var pts []string
	prev := 0
	for i, pt := range rs.Points {
		px := x(pt.Time)
		if i > 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, y(prev)))
		} else {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(labelWidth), y(0)), fmt.Sprintf("%.1f,%.1f", px, y(0)))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, y(pt.Held)))
		prev = pt.Held
	}
	pts = append(pts, fmt.Sprintf("%.1f,%.1f", labelWidth+plotW, y(prev)))
	name := fmt.Sprintf("netns %d", rs.NetNS)
	if rs.Name != "" {
		name += " (" + rs.Name + ")"
	}
	c := occChart{Points: strings.Join(pts, " "), Cap: -1, Height: occHeight,
		YTicks: []tick{{X: y(0), Label: "0"}, {X: y(top), Label: fmt.Sprint(top)}}}
	if size > 0 {
		c.Title = fmt.Sprintf("%s — range %d-%d (%d ports)", name, rs.Range[0], rs.Range[1], size)
		if top == size {
			c.Cap = y(size)
		}
		c.PeakText = fmt.Sprintf("peak %d of %d held (%.1f%%)", rs.Peak, size, 100*float64(rs.Peak)/float64(size))
	} else {
		c.Title = name + " — range unknown"
		c.PeakText = fmt.Sprintf("peak %d held", rs.Peak)
	}
	return c
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.Format("2006-01-02 15:04:05.000000") },
	"tsp": func(t *time.Time) string {
		if t == nil {
			return "still held"
		}
		return t.Format("15:04:05.000000")
	},
	"ns":  func(n int64) string { return output.Duration(time.Duration(n)) },
	"add": func(a, b float64) float64 { return a + b },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>porttrace report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.meta{color:#556} .warn{color:#a33;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:6px 0} th,td{padding:3px 10px;border-bottom:1px solid #eceff4;text-align:left}
th{background:#f4f6fa} td.n{text-align:right;font-variant-numeric:tabular-nums}
svg text{font:11px system-ui,sans-serif;fill:#334} .grid{stroke:#e3e7ee}
.hold{fill:#3b78c4} .open{fill:#8ab4e8} .fail{stroke:#d11;stroke-width:2} .occ{fill:none;stroke:#2a8a4a;stroke-width:1.5} .cap{stroke:#d11;stroke-dasharray:4 3}
.legend span{display:inline-block;margin-right:16px} .sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.sw.hold{background:#3b78c4} .sw.open{background:#8ab4e8} .sw.fail{background:#d11}
</style></head><body>
<h1>porttrace report</h1>
<div class="meta">{{range $i, $f := .R.Files}}{{if $i}}, {{end}}{{$f}}{{end}}<br>
{{if .R.Span.Start.IsZero}}No events matched.{{else}}{{ts .R.Span.Start}} to {{ts .R.Span.End}} UTC ({{call .Dur .R.Span.Duration}}){{end}} · filter: {{.R.Filter}} ·
{{.R.Events}} events · {{.R.Lost}} lost · {{.R.FailTotal}} failures</div>
{{if .R.Truncated}}<p class="warn">A recording was cut short; it was read up to its last whole line.</p>{{end}}
{{range .R.Damaged}}<p class="warn">{{.File}} is damaged ({{.Err}}): only its first {{.Lines}} lines ({{.Bytes}} of {{.Size}} bytes) are in this report.</p>{{end}}
{{if gt .R.Duplicates 0}}<p class="warn">{{.R.Duplicates}} repeated events (the same recording twice, or rotated files that overlap) were counted once.</p>{{end}}
{{range .R.Limits}}<p class="warn">{{.}}</p>{{end}}
{{if gt .R.Lost 0}}<p class="warn">{{.R.Lost}} events were lost in the kernel while recording: holds and counts may be missing.</p>{{end}}

<h2>Timeline</h2>
<div class="legend"><span><i class="sw hold"></i>port held</span><span><i class="sw open"></i>still held at the end</span><span><i class="sw fail"></i>failed to get a port</span></div>
{{if .RowsNote}}<p class="meta">{{.RowsNote}}</p>{{end}}
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="1100" height="{{.Height}}" viewBox="0 0 1100 {{.Height}}" role="img" aria-label="timeline of port holds">
{{range .Ticks}}<line class="grid" x1="{{.X}}" y1="20" x2="{{.X}}" y2="{{$.Height}}"/><text x="{{.X}}" y="14" text-anchor="{{.Anchor}}">{{.Label}}</text>
{{end}}{{range .Rows}}<text class="rowlabel" x="4" y="{{.Y}}" dy="11">{{.Label}}</text>
{{$y := .Y}}{{$h := .H}}{{range .Bars}}<rect class="{{.Class}}" x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}"><title>{{.Title}}</title></rect>
{{end}}{{range .Marks}}<line class="fail" x1="{{printf "%.1f" .X}}" y1="{{$y}}" x2="{{printf "%.1f" .X}}" y2="{{add $y $h}}"><title>{{.Title}}</title></line>
{{end}}{{end}}</svg>

<h2>Ports in use per namespace</h2>
{{range .Occ}}<div class="meta">{{.Title}} · {{.PeakText}}</div>
<svg class="occupancy" xmlns="http://www.w3.org/2000/svg" width="1100" height="{{.Height}}" viewBox="0 0 1100 {{.Height}}" role="img" aria-label="ports in use over time">
{{range .YTicks}}<line class="grid" x1="190" y1="{{.X}}" x2="1090" y2="{{.X}}"/><text x="184" y="{{.X}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{if ge .Cap 0.0}}<line class="cap" x1="190" y1="{{.Cap}}" x2="1090" y2="{{.Cap}}"><title>range size</title></line>{{end}}
<polyline class="occ" points="{{.Points}}"/></svg>
{{end}}

<h2>Processes</h2>
{{if .ProcsNote}}<p class="meta">{{.ProcsNote}}</p>{{end}}
<table id="processes"><tr><th>PID</th><th>command</th><th>allocations</th><th>held at start</th><th>releases</th><th>held p50</th><th>p99</th><th>max</th><th>peak at once</th><th>failed</th><th>pod</th></tr>
{{range .R.Processes}}<tr><td class="n">{{.PID}}</td><td>{{.Comm}}</td><td class="n">{{.Allocs}}</td><td class="n">{{.Existing}}</td><td class="n">{{.Releases}}</td><td class="n">{{if .Releases}}{{call $.Dur .HeldP50}}{{else}}-{{end}}</td><td class="n">{{if .Releases}}{{call $.Dur .HeldP99}}{{else}}-{{end}}</td><td class="n">{{if .Releases}}{{call $.Dur .HeldMax}}{{else}}-{{end}}</td><td class="n">{{.Peak}}</td><td class="n">{{.Fails}}</td><td>{{.PodRef.Name}}</td></tr>
{{end}}</table>

{{range .R.Ports}}<h2>Port {{.Port}}/{{.Proto}}</h2>
<table class="holds"><tr><th>PID</th><th>command</th><th>netns</th><th>from</th><th>to</th><th>held</th><th>via</th><th>ended</th><th>remote</th></tr>
{{range .Holds}}<tr><td class="n">{{.PID}}</td><td>{{.Comm}}</td><td class="n">{{.NetNS}}</td><td>{{.Start.Format "15:04:05.000000"}}</td><td>{{tsp .End}}</td><td class="n">{{ns .Held}}</td><td>{{.Via}}</td><td>{{.State}}</td><td>{{.Remote}}</td></tr>
{{end}}</table>{{if .LeftOut}}<p class="meta">{{.LeftOut}} more holds of this port are left out (porttrace report --format text or json lists them).</p>{{end}}{{end}}

<h2>Failures</h2>
{{if .R.Failures}}<table id="failures"><tr><th>time</th><th>PID</th><th>command</th><th>proto</th><th>via</th><th>to</th><th>errno</th><th>ports held</th><th>netns</th><th>pod</th></tr>
{{range .R.Failures}}<tr><td>{{.Time.Format "15:04:05.000000"}}{{if .Deferred}}*{{end}}</td><td class="n">{{.PID}}</td><td>{{.Comm}}</td><td>{{.Proto}}</td><td>{{.Via}}</td><td>{{.Remote}}</td><td>{{.Errno}}</td><td class="n">{{.InUse}}</td><td class="n">{{.NetNS}}</td><td>{{.PodRef.Name}}</td></tr>
{{end}}</table><p class="meta">* seen when the socket was closed or the call retried; the time is the call's.</p>{{else}}<p>None.</p>{{end}}
<p class="meta">Made by porttrace on {{.Generated}}.</p>
</body></html>
`))
