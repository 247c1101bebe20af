package scylla

import (
	"fmt"
	"testing"

	"github.com/liveim/liveim/storage"
)

// listGroups writes app_groups rows directly, as liveim before the
// counter did, for n groups, closed unless i%open == 0 (open > 0).
func listGroups(t testing.TB, s *Store, appID string, n, open int) {
	t.Helper()
	for i := 0; i < n; i += 1_000 {
		b := s.session.Batch(0).WithContext(t.Context())
		for j := i; j < min(i+1_000, n); j++ {
			b.Query(`INSERT INTO app_groups (app_id, group_id, closed) VALUES (?, ?, ?)`, appID, fmt.Sprintf("old-%d", j), j%open != 0)
		}
		if err := b.Exec(); err != nil {
			t.Fatal(err)
		}
	}
}

func wantCount(t testing.TB, s *Store, appID string, want int) {
	t.Helper()
	if n, err := s.CountGroups(t.Context(), appID); err != nil || n != want {
		t.Fatalf("CountGroups(%s) = %d, %v; want %d", appID, n, err, want)
	}
}

// TestGroupCountFromEarlierVersion: an app whose groups an earlier
// liveim listed gets its counter started from that list, once, and
// counts on from there.
func TestGroupCountFromEarlierVersion(t *testing.T) {
	ks := randomKeyspace()
	s := openTest(t, ks)
	listGroups(t, s, "app", 10, 2) // 5 open
	wantCount(t, s, "app", 5)
	if _, _, err := s.CreateGroup(t.Context(), storage.Group{AppID: "app", ID: "new"}); err != nil {
		t.Fatal(err)
	}
	wantCount(t, s, "app", 6)
	// Another store (another router) does not start it again.
	other, err := Open(t.Context(), testConfig(cqlHosts(t), ks), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wantCount(t, other, "app", 6)
}

// TestGroupCountPastDeletedGroups: deleted groups' tombstones in
// app_groups, more than a read may step over, do not stop the app's
// groups being counted (nor created: createGroup counts first).
func TestGroupCountPastDeletedGroups(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "app", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 101_000; i += 2_000 {
		b := s.session.Batch(0).WithContext(ctx)
		for j := i; j < i+2_000; j++ {
			b.Query(`DELETE FROM app_groups WHERE app_id = ? AND group_id = ?`, "app", fmt.Sprintf("gone-%06d", j))
		}
		if err := b.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	wantCount(t, s, "app", 2)
}

// BenchmarkCountGroups: an app that has had 100,000 groups, 1% of them
// open.
func BenchmarkCountGroups(b *testing.B) {
	s := openBench(b)
	listGroups(b, s, "app", 100_000, 100)
	wantCount(b, s, "app", 1_000)
	for b.Loop() {
		if _, err := s.CountGroups(b.Context(), "app"); err != nil {
			b.Fatal(err)
		}
	}
}
