package callback

import "testing"

func TestWants(t *testing.T) {
	cases := []struct {
		name   string
		url    string
		events []string
		kind   string
		want   bool
	}{
		{"no URL", "", nil, GroupJoin, false},
		{"all kinds", "http://app/cb", nil, GroupJoin, true},
		{"asked for", "http://app/cb", []string{GroupMessage, GroupJoin}, GroupJoin, true},
		{"not asked for", "http://app/cb", []string{GroupMessage}, GroupJoin, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Wants(tc.url, tc.events, tc.kind); got != tc.want {
				t.Fatalf("Wants = %v", got)
			}
		})
	}
	for _, k := range Kinds {
		if !Known(k) {
			t.Errorf("%s unknown", k)
		}
	}
	if Known("group.exploded") {
		t.Error("an invented kind is known")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if (Config{MaxAge: -1}).Validate() == nil || (Config{Batch: -1}).Validate() == nil {
		t.Fatal("negative values pass")
	}
}
