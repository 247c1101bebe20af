package subject

import "testing"

func TestParse(t *testing.T) {
	if a, g, ok := ParseGroup(GroupHigh("app-1", "room-1")); !ok || a != "app-1" || g != "room-1" {
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
