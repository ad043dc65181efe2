package report

import (
	"sort"
	"time"
)

// occupancy follows how many ports of one namespace are held: every change
// while the report's budget of steps lasts, and always the highest level of
// each bucket of time, buckets that widen (1 s, 2 s, 4 s...) so that there
// are never more than maxBuckets: memory is bounded whatever the span.
type occupancy struct {
	level int
	peak  int
	res   int64         // seconds per bucket
	secs  map[int64]int // bucket start (unix seconds) → highest level in it
	lasts map[int64]int // bucket start → level at its end
	steps []step        // every change, while exact (for at())
	exact bool
	left  *int // steps the whole report may still keep
}

type step struct {
	t     time.Time
	level int
}

const (
	maxSteps   = 200000 // changes kept, over all namespaces (6 MB)
	maxBuckets = 2048   // buckets per namespace
)

func newOccupancy(left *int) *occupancy {
	return &occupancy{res: 1, secs: map[int64]int{}, lasts: map[int64]int{}, exact: true, left: left}
}

func (o *occupancy) change(t time.Time, d int) {
	if o == nil {
		return // a namespace beyond MaxNamespaces
	}
	o.level += d
	if o.level < 0 {
		o.level = 0 // a release whose alloc came before the recording
	}
	if o.level > o.peak {
		o.peak = o.level
	}
	s := o.bucket(t)
	o.lasts[s] = o.level
	if v, ok := o.secs[s]; !ok || o.level > v {
		o.secs[s] = o.level
	}
	if len(o.secs) > maxBuckets {
		o.coarsen()
	}
	if o.exact {
		if *o.left > 0 {
			o.steps = append(o.steps, step{t, o.level})
			*o.left--
		} else {
			*o.left += len(o.steps)
			o.steps, o.exact = nil, false
		}
	}
}

func (o *occupancy) bucket(t time.Time) int64 {
	s := t.Unix()
	return s - mod(s, o.res)
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// coarsen doubles the width of the buckets, merging pairs.
func (o *occupancy) coarsen() {
	o.res *= 2
	secs, lasts := map[int64]int{}, map[int64]int{}
	keys := make([]int64, 0, len(o.secs))
	for s := range o.secs {
		keys = append(keys, s)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, s := range keys {
		n := s - mod(s, o.res)
		if v, ok := secs[n]; !ok || o.secs[s] > v {
			secs[n] = o.secs[s]
		}
		lasts[n] = o.lasts[s] // keys ascend: the later bucket's end wins
	}
	o.secs, o.lasts = secs, lasts
}

// at is the level at time t, or the highest of its bucket once steps are
// no longer all kept.
func (o *occupancy) at(t time.Time) int {
	if o == nil {
		return 0
	}
	if o.exact {
		i := sort.Search(len(o.steps), func(i int) bool { return o.steps[i].t.After(t) })
		if i == 0 {
			return 0
		}
		return o.steps[i-1].level
	}
	return o.secs[o.bucket(t)]
}

// points gives every change while they are all kept; past that, for every
// bucket with a change, the highest level in it, and where the bucket ended
// lower, that level at its end.
func (o *occupancy) points() []OccPoint {
	if o.exact { // every change is known: the exact curve
		out := make([]OccPoint, len(o.steps))
		for i, st := range o.steps {
			out[i] = OccPoint{Time: st.t.UTC(), Held: st.level}
		}
		return out
	}
	secs := make([]int64, 0, len(o.secs))
	for s := range o.secs {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	out := make([]OccPoint, 0, 2*len(secs))
	for _, s := range secs {
		out = append(out, OccPoint{Time: time.Unix(s, 0).UTC(), Held: o.secs[s]})
		if last := o.lasts[s]; last != o.secs[s] {
			out = append(out, OccPoint{Time: time.Unix(s+o.res, 0).UTC(), Held: last})
		}
	}
	return out
}
