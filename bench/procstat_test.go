package bench

import (
	"math"
	"testing"
)

// TestFrameQuantiles: histogram buckets are summed over gateways, the
// phase's start is taken off, and quantiles interpolate within a bucket
// as Prometheus's histogram_quantile does.
func TestFrameQuantiles(t *testing.T) {
	page := func(wait1ms, wait10ms, inf float64) samples {
		return samples{
			`liveim_gateway_room_frame_seconds_bucket{stage="wait",le="0.001"}`:  wait1ms,
			`liveim_gateway_room_frame_seconds_bucket{stage="wait",le="0.01"}`:   wait10ms,
			`liveim_gateway_room_frame_seconds_bucket{stage="wait",le="+Inf"}`:   inf,
			`liveim_gateway_room_frame_seconds_bucket{stage="write",le="0.001"}`: 1000,
			`liveim_gateway_room_frame_seconds_count{stage="wait"}`:              inf,
		}
	}
	start := []samples{page(50, 50, 50), page(0, 0, 0)}
	end := []samples{page(100, 150, 150), page(50, 250, 250)} // +100 and +250 frames
	bs := buckets("liveim_gateway_room_frame_seconds", `stage="wait"`, start, end)
	if len(bs) != 3 || bs[0].count != 100 || bs[1].count != 350 || bs[2].count != 350 || !math.IsInf(bs[2].le, 1) {
		t.Fatalf("buckets %+v", bs)
	}
	// Rank 175 of 350 lies 75 of 250 frames into (1 ms, 10 ms].
	if q := quantile(0.5, bs); math.Abs(q-0.0037) > 1e-9 {
		t.Fatalf("p50 %v, want 0.0037", q)
	}
	if q := quantile(0.1, bs); math.Abs(q-0.00035) > 1e-9 {
		t.Fatalf("p10 %v, want 0.00035", q)
	}
	if q := quantile(0.99, nil); !math.IsNaN(q) {
		t.Fatalf("no samples: %v, want NaN", q)
	}
	if n := (samples{`liveim_router_requests_total{code="503",op="join"}`: 3, `liveim_router_requests_total{code="0",op="join"}`: 9}).sum("liveim_router_requests_total", `code="503"`); n != 3 {
		t.Fatalf("503 replies %v, want 3", n)
	}
}
