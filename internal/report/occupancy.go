package report

import (
	"sort"
	"time"
)

// occupancy follows how many ports of one namespace are held, keeping the
// highest level of each second: memory grows with the span, not the events.
type occupancy struct {
	level int
	peak  int
	secs  map[int64]int // unix second → highest level in it
	lasts map[int64]int // unix second → level at its end
	steps []step        // every change, while there are few (for at())
}

type step struct {
	t     time.Time
	level int
}

const maxSteps = 200000

func (o *occupancy) change(t time.Time, d int) {
	o.level += d
	if o.level < 0 {
		o.level = 0 // a release whose alloc came before the recording
	}
	if o.level > o.peak {
		o.peak = o.level
	}
	if o.secs == nil {
		o.secs, o.lasts = map[int64]int{}, map[int64]int{}
	}
	s := t.Unix()
	o.lasts[s] = o.level
	if o.level > o.secs[s] {
		o.secs[s] = o.level
	} else if _, ok := o.secs[s]; !ok {
		o.secs[s] = o.level
	}
	if len(o.steps) < maxSteps {
		o.steps = append(o.steps, step{t, o.level})
	}
}

// at is the level at time t, or the highest of its second once steps are
// no longer all kept.
func (o *occupancy) at(t time.Time) int {
	if o == nil {
		return 0
	}
	if len(o.steps) < maxSteps {
		i := sort.Search(len(o.steps), func(i int) bool { return o.steps[i].t.After(t) })
		if i == 0 {
			return 0
		}
		return o.steps[i-1].level
	}
	return o.secs[t.Unix()]
}

// points gives every change while they are few; past that, for every second
// with a change, the highest level in it, and where the second ended lower,
// that level at its end.
func (o *occupancy) points() []OccPoint {
	if len(o.steps) < maxSteps { // every change is known: the exact curve
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
			out = append(out, OccPoint{Time: time.Unix(s+1, 0).UTC(), Held: last})
		}
	}
	return out
}
