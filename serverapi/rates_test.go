package serverapi

import (
	"testing"
	"time"
)

// TestAppRates: an app's bucket holds burst requests, refills at rate,
// and loses nothing to a request that read the clock before another but
// took the lock after it (concurrent requests do: at a high rate the
// time between them, counted backwards, emptied the bucket).
func TestAppRates(t *testing.T) {
	var a appRates
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !a.allow("app", 1, 3, t0) {
			t.Fatalf("request %d of a burst of 3 refused", i)
		}
	}
	if a.allow("app", 1, 3, t0) {
		t.Fatal("a request past the burst went through")
	}
	if !a.allow("other", 1, 3, t0) {
		t.Fatal("another app's request refused")
	}
	if !a.allow("app", 1, 3, t0.Add(time.Second)) {
		t.Fatal("no refill after a second")
	}
	var fast appRates
	late := t0.Add(2 * time.Millisecond)
	if !fast.allow("app", 1e6, 2000, late) || !fast.allow("app", 1e6, 2000, t0) || !fast.allow("app", 1e6, 2000, late) {
		t.Fatal("a request that read the clock 2 ms early emptied the bucket")
	}
}
