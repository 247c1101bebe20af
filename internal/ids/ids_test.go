package ids

import (
	"errors"
	"strings"
	"testing"

	"github.com/liveim/liveim/proto/liveimpb"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"simple", "room-1", true},
		{"max length", strings.Repeat("a", 64), true},
		{"too long", strings.Repeat("a", 65), false},
		{"empty", "", false},
		{"underscore", "a_b", false},
		{"dot", "a.b", false},
		{"space", "a b", false},
		{"unicode", "房间", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("groupId", tt.id)
			if tt.ok != (err == nil) {
				t.Fatalf("Check(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, liveimpb.ErrInvalidParameter) || !strings.Contains(err.Error(), "groupId")) {
				t.Fatalf("Check(%q) = %v, want 400 naming groupId", tt.id, err)
			}
		})
	}
	if id := New(); !Valid(id) {
		t.Fatalf("New() = %q is not valid", id)
	}
}
