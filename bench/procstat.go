package bench

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// samples are the samples of one /metrics page, keyed by name with its
// labels as the page writes them (`name{a="b"}`).
type samples map[string]float64

// scrape reads the /metrics of the server whose internal listener is at
// addr (host:port).
func scrape(addr string) (samples, error) {
	u := "http://" + addr + "/metrics"
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if _, ok := out["go_memstats_heap_inuse_bytes"]; !ok {
		return nil, fmt.Errorf("%s: no go_memstats_heap_inuse_bytes", u)
	}
	return out, sc.Err()
}

// sum adds the samples whose key starts with prefix and holds every one
// of labels (e.g. `code="503"`).
func (s samples) sum(prefix string, labels ...string) float64 {
	var t float64
	for k, v := range s {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(k, l)
		}
		if ok {
			t += v
		}
	}
	return t
}

// bucket is one cumulative histogram bucket: count of samples ≤ le.
type bucket struct {
	le    float64
	count float64
}

// buckets returns the cumulative buckets of histogram name with labels
// (e.g. `stage="wait"`), summed over pages, as end minus start.
func buckets(name, labels string, start, end []samples) []bucket {
	byLE := map[float64]float64{}
	add := func(pages []samples, sign float64) {
		for _, s := range pages {
			for k, v := range s {
				rest, ok := strings.CutPrefix(k, name+"_bucket{")
				if !ok || !strings.Contains(rest, labels) {
					continue
				}
				_, le, ok := strings.Cut(rest, `le="`)
				if !ok {
					continue
				}
				le, _, _ = strings.Cut(le, `"`)
				bound, err := strconv.ParseFloat(le, 64)
				if err != nil {
					continue
				}
				byLE[bound] += sign * v
			}
		}
	}
	add(end, 1)
	add(start, -1)
	out := make([]bucket, 0, len(byLE))
	for le, c := range byLE {
		out = append(out, bucket{le, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	return out
}

// quantile estimates quantile q of cumulative buckets the way
// Prometheus's histogram_quantile does: linearly within the bucket it
// falls in. It is NaN without samples; in the +Inf bucket it is the
// highest finite bound.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lower
			}
			if b.count == below {
				return b.le
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.le, b.count
	}
	return lower
}
