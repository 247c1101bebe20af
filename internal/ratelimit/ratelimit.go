// Package ratelimit holds the token buckets that bound what one room, one
// app or one client may take of a shared router: a Bucket guarded by its
// owner's lock, and Keyed buckets, one per key, with a lock of their own.
// (A gateway's sessions keep theirs packed into the session for memory;
// gateway/limits.go.)
package ratelimit

import (
	"sync"
	"time"
)

// Bucket allows rate tokens a second, burst at once. Its owner guards it.
type Bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// New returns a full bucket.
func New(rate, burst float64, now time.Time) Bucket {
	return Bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

// Take takes up to n tokens, as many as the bucket holds (whole ones),
// and returns how many it took.
func (b *Bucket) Take(n int, now time.Time) int {
	// A caller may have read the clock before another that came in
	// first: time does not go back, or the bucket would empty itself at
	// a high rate.
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	got := max(min(n, int(b.tokens)), 0) // nothing while in debt (Owe)
	b.tokens -= float64(got)
	return got
}

// Allow takes one token if the bucket holds one.
func (b *Bucket) Allow(now time.Time) bool { return b.Take(1, now) == 1 }

// Give puts back n tokens taken and not used.
func (b *Bucket) Give(n int) { b.tokens = min(b.burst, b.tokens+float64(n)) }

// Owe takes n tokens whether the bucket holds them or not: what it lacks
// is paid back from its refills before anything is allowed again.
func (b *Bucket) Owe(n int, now time.Time) {
	b.Take(0, now) // refill up to now
	b.tokens -= float64(n)
}

// Keyed is a bucket per key (an app), each allowing rate a second, burst
// at once; safe for concurrent use. Keys are never forgotten: use it for
// keys the caller has checked exist (apps, not the IDs a client names).
type Keyed struct {
	Rate, Burst float64
	// MaxDebt bounds what a key may owe (Owe); 0 for no bound.
	MaxDebt float64

	mu      sync.Mutex
	buckets map[string]*Bucket
}

// Take takes up to n of key's tokens and returns how many it took.
func (k *Keyed) Take(key string, n int, now time.Time) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.bucket(key, now).Take(n, now)
}

// bucket returns key's bucket, made full if it has none; k.mu is held.
func (k *Keyed) bucket(key string, now time.Time) *Bucket {
	b := k.buckets[key]
	if b == nil {
		if k.buckets == nil {
			k.buckets = make(map[string]*Bucket)
		}
		nb := New(k.Rate, k.Burst, now)
		b = &nb
		k.buckets[key] = b
	}
	return b
}

// Allow takes one of key's tokens if there is one.
func (k *Keyed) Allow(key string, now time.Time) bool { return k.Take(key, 1, now) == 1 }

// Owe takes n of key's tokens whether there are so many or not
// (Bucket.Owe), unless that would put it more than MaxDebt in debt: then
// it takes none and reports false.
func (k *Keyed) Owe(key string, n int, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.bucket(key, now)
	b.Take(0, now) // refill up to now
	if k.MaxDebt > 0 && b.tokens-float64(n) < -k.MaxDebt {
		return false
	}
	b.Owe(n, now)
	return true
}

// Give puts back n of key's tokens taken and not used.
func (k *Keyed) Give(key string, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if b := k.buckets[key]; b != nil {
		b.Give(n)
	}
}
