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

// TestTemplate: each subject built here maps to its template, which has
// the same shape with the IDs replaced.
func TestTemplate(t *testing.T) {
	for _, tc := range []struct{ subject, want string }{
		{RPC("app-1", "room-1"), RPCTemplate},
		{Any("app-1"), AnyTemplate},
		{GroupEvents("app-1", "room-1"), GroupEventsTemplate},
		{GroupHigh("app-1", "room-1"), GroupHighTemplate},
		{User("app-1", "u-1"), UserTemplate},
		{Auth, ""},
		{"liveim.grp.a.b.x", ""},
	} {
		if got := Template(tc.subject); got != tc.want {
			t.Errorf("Template(%q) = %q, want %q", tc.subject, got, tc.want)
		}
	}
}
