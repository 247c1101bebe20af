// Package latency is the latency histogram of liveim's load generators
// (`liveim bench` and `liveim ceiling`), so both report percentiles the
// same way: 200 log-spaced buckets from 10 µs to about 100 s, about 8.4%
// wide each.
package latency

import "math"

// Buckets is the size of a Hist.
const Buckets = 200

// Hist counts latencies per bucket. It marshals to JSON as a list, so
// worker processes send theirs to the parent as is.
type Hist []int64

// New returns an empty histogram.
func New() Hist { return make(Hist, Buckets) }

// Add counts one latency of ns nanoseconds.
func (h Hist) Add(ns int64) { h[bucketOf(ns)]++ }

// Merge adds o's counts to h.
func (h Hist) Merge(o Hist) {
	for b, n := range o {
		if b < len(h) {
			h[b] += n
		}
	}
}

// Reset zeroes h.
func (h Hist) Reset() { clear(h) }

// Percentile returns the latency at quantile q in milliseconds: the upper
// bound of the bucket that holds it.
func (h Hist) Percentile(q float64) float64 {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(total)))
	var seen int64
	for b, n := range h {
		seen += n
		if seen >= want {
			return BucketMs(b)
		}
	}
	return BucketMs(len(h) - 1)
}

func bucketOf(ns int64) int {
	us := float64(ns) / 1e3
	if us < 10 {
		return 0
	}
	b := int(math.Log(us/10) / math.Log(1e7) * (Buckets - 1))
	return min(b, Buckets-1)
}

// BucketMs is the upper bound of bucket b in milliseconds.
func BucketMs(b int) float64 {
	return 10 * math.Pow(1e7, float64(b+1)/(Buckets-1)) / 1e3
}
