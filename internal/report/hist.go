package report

import (
	"math"
	"sort"
	"time"
)

// hist keeps durations in logarithmic buckets 1% wide: percentiles within
// 1% in memory that does not grow with the number of holds.
type hist struct {
	buckets map[int32]uint64
	n       uint64
	max     time.Duration
}

const histBase = 1.01

var logBase = math.Log(histBase)

func (h *hist) add(d time.Duration) {
	if h.buckets == nil {
		h.buckets = map[int32]uint64{}
	}
	if d < 1 {
		d = 1
	}
	h.buckets[int32(math.Log(float64(d))/logBase)]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// quantile returns the duration at q (0..1), the upper edge of its bucket
// but never above the largest value seen.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	keys := make([]int32, 0, len(h.buckets))
	for k := range h.buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for _, k := range keys {
		seen += h.buckets[k]
		if seen >= rank {
			v := time.Duration(math.Pow(histBase, float64(k+1)))
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}
