package latency

import "testing"

func TestPercentile(t *testing.T) {
	h := New()
	if h.Percentile(0.5) != 0 {
		t.Fatal("empty histogram has no percentile")
	}
	for i := range 1000 {
		h.Add(int64(i+1) * 1e6) // 1 ms .. 1000 ms
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.99, 990}, {0.001, 1}} {
		got := h.Percentile(c.q)
		if got < c.want || got > c.want*1.09 { // a bucket is ~8.4% wide
			t.Errorf("p%v = %v ms, want %v ms within a bucket", c.q*100, got, c.want)
		}
	}
	o := New()
	o.Add(5e9)
	h.Merge(o)
	if got := h.Percentile(1); got < 5000 || got > 5500 {
		t.Errorf("max after merge %v ms", got)
	}
	h.Reset()
	if h.Percentile(0.5) != 0 {
		t.Fatal("reset histogram is not empty")
	}
}
