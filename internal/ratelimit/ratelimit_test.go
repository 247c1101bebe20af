package ratelimit

import (
	"testing"
	"time"
)

// TestBucket: a bucket holds burst tokens, refills at rate, takes what
// it has of a larger ask, takes back what was given, and loses nothing to
// a caller that read the clock before another but came in after it
// (concurrent requests do: at a high rate the time between them, counted
// backwards, emptied the bucket).
func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(10, 10, t0)
	n := 0
	for b.Allow(t0) {
		n++
	}
	if n != 10 {
		t.Fatalf("burst %d, want 10", n)
	}
	if !b.Allow(t0.Add(100*time.Millisecond)) || b.Allow(t0.Add(100*time.Millisecond)) {
		t.Fatal("not one token after 100 ms at 10/s")
	}
	if got := b.Take(8, t0.Add(time.Second)); got != 8 {
		t.Fatalf("took %d of 8 after a second", got)
	}
	if got := b.Take(8, t0.Add(time.Second)); got != 1 {
		t.Fatalf("took %d of the 1 left", got)
	}
	b.Give(5)
	if got := b.Take(100, t0.Add(time.Second)); got != 5 {
		t.Fatalf("took %d of the 5 given back", got)
	}
	// What is owed is paid back before anything is allowed again.
	owing := New(10, 10, t0)
	owing.Owe(25, t0)
	if owing.Allow(t0.Add(time.Second)) || !owing.Allow(t0.Add(1600*time.Millisecond)) {
		t.Fatal("a bucket 15 tokens in debt at 10/s: want nothing for 1.5 s, then a token")
	}
	fast := New(1e6, 2000, t0)
	late := t0.Add(2 * time.Millisecond)
	if !fast.Allow(late) || !fast.Allow(t0) || !fast.Allow(late) {
		t.Fatal("a caller that read the clock 2 ms early emptied the bucket")
	}
}

// TestKeyed: each key has a bucket of its own.
func TestKeyed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := Keyed{Rate: 1, Burst: 3}
	if got := k.Take("app", 5, t0); got != 3 {
		t.Fatalf("took %d of a burst of 3", got)
	}
	if k.Allow("app", t0) {
		t.Fatal("a token past the burst")
	}
	if !k.Allow("other", t0) {
		t.Fatal("another key's token refused")
	}
	k.Give("app", 1)
	if !k.Allow("app", t0) {
		t.Fatal("a token given back not taken")
	}
	k.Owe("other", 5, t0)
	if k.Allow("other", t0.Add(time.Second)) {
		t.Fatal("a key 3 tokens in debt allowed one after a second at 1/s")
	}
	bounded := Keyed{Rate: 1, Burst: 3, MaxDebt: 10}
	if !bounded.Owe("app", 13, t0) || bounded.Owe("app", 1, t0) {
		t.Fatal("a key may owe 10 past its 3 tokens, not one more")
	}
	if !k.Allow("app", t0.Add(time.Second)) {
		t.Fatal("no refill after a second")
	}
}
