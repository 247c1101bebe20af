package ratelimit

import (
	"testing"
	"time"
)

// Tests from an audit of Owe, each failing on the code audited.

// TestAudit2OweForgivenByARefusal: Owe leaves a bucket below zero; the
// next Take computed got := min(n, int(tokens)), negative, and
// "tokens -= got" ADDED the debt back: one refused Allow wiped what was
// owed down to its fraction (now Take gives nothing in debt). A bucket 25 tokens in debt at 10/s should
// allow nothing for 2.5 s; after one refused Allow it allows again 100 ms
// later.
func TestAudit2OweForgivenByARefusal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(10, 10, t0)
	for b.Allow(t0) { // empty it
	}
	b.Owe(25, t0)
	if b.Allow(t0) {
		t.Fatal("allowed while 25 in debt")
	}
	if b.Allow(t0.Add(100 * time.Millisecond)) {
		t.Fatalf("a bucket 25 tokens in debt at 10/s allowed a token 100 ms later (tokens now %.1f): one refused Allow forgave the debt", b.tokens)
	}
}

// TestAudit2KeyedOweForgivenByARefusal: the same through Keyed, as the
// router's resume read rate uses it.
func TestAudit2KeyedOweForgivenByARefusal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := Keyed{Rate: 20, Burst: 20}
	k.Take("app", 20, t0)
	k.Owe("app", 1000, t0) // a page that skipped 1,000 noStorage messages
	refused := k.Allow("app", t0)
	if allowed := k.Allow("app", t0.Add(time.Second)); refused || allowed {
		t.Fatalf("1,000 reads owed at 20/s: a second later allowed=%v (want false until ~50 s)", allowed)
	}
}

// TestAudit2OweDoesNotAddUp: Owe refills first with Take(0, now), which
// in debt hits the same arithmetic: each Owe forgives what was owed
// before it. Owing 1 a hundred times leaves the bucket ~1 in debt, not
// 100: a resume page that reads 100 gets on credit owes one.
func TestAudit2OweDoesNotAddUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(10, 10, t0)
	b.Take(10, t0)
	for range 100 {
		b.Owe(1, t0)
	}
	if b.tokens > -99 {
		t.Fatalf("owed 1 a hundred times: tokens %.1f, want -100", b.tokens)
	}
}
