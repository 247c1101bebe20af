package subject

import (
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	if a, g, ok := ParseGroup(GroupHigh("app-1", "room-1", 3)); !ok || a != "app-1" || g != "room-1" {
		t.Fatalf("ParseGroup(high) = %q %q %v", a, g, ok)
	}
	if a, g, ok := ParseGroup(GroupEvents("app-1", "room-1")); !ok || a != "app-1" || g != "room-1" {
		t.Fatalf("ParseGroup(events) = %q %q %v", a, g, ok)
	}
	if a, u, ok := ParseUser(User("app-1", "u-1")); !ok || a != "app-1" || u != "u-1" {
		t.Fatalf("ParseUser = %q %q %v", a, u, ok)
	}
	if p, a, g, ok := ParseRPCPartition("liveim.rpcp.7.app-1.room-1"); !ok || p != 7 || a != "app-1" || g != "room-1" {
		t.Fatalf("ParseRPCPartition = %d %q %q %v", p, a, g, ok)
	}
	for _, bad := range []string{"liveim.rpcp.x.a.b", "liveim.rpcp.1.a", "nope"} {
		if _, _, _, ok := ParseRPCPartition(bad); ok {
			t.Errorf("ParseRPCPartition(%q) ok", bad)
		}
	}
}

// TestTemplate: each subject built here maps to its template, which has
// the same shape with the IDs replaced.
func TestTemplate(t *testing.T) {
	for _, tc := range []struct{ subject, want string }{
		{RPC("app-1", "room-1"), RPCTemplate},
		{Any("app-1"), AnyTemplate},
		{GroupEvents("app-1", "room-1"), GroupEventsTemplate},
		{GroupHigh("app-1", "room-1", 3), GroupHighTemplate},
		{GroupHigh("app-1", "room-1", 12), GroupHighTemplate},
		{LegacyGroupHigh("app-1", "room-1"), GroupHighTemplate},
		{"liveim.grp.a.b.hx", ""},
		{User("app-1", "u-1"), UserTemplate},
		{Auth, ""},
		{"liveim.grp.a.b.x", ""},
	} {
		if got := Template(tc.subject); got != tc.want {
			t.Errorf("Template(%q) = %q, want %q", tc.subject, got, tc.want)
		}
	}
}

// TestHighShard: a group's shard is fixed, within range, and groups
// spread over the shards.
func TestHighShard(t *testing.T) {
	const shards = 8
	seen := make(map[int]int)
	for i := range 8000 {
		g := "room-" + strconv.Itoa(i)
		s := HighShard("app-1", g, shards)
		if s < 0 || s >= shards || s != HighShard("app-1", g, shards) {
			t.Fatalf("shard of %s: %d", g, s)
		}
		seen[s]++
	}
	for s := range shards {
		if seen[s] < 800 || seen[s] > 1200 {
			t.Fatalf("shard %d holds %d of 8,000 groups: %v", s, seen[s], seen)
		}
	}
	if HighShard("a", "b", 1) != 0 || HighShard("a", "b", 0) != 0 {
		t.Fatal("one shard is not shard 0")
	}
	// The separator keeps IDs from running into each other.
	if HighShard("ab", "c", 1<<20) == HighShard("a", "bc", 1<<20) {
		t.Fatal("app ab / group c and app a / group bc share a hash")
	}
}
