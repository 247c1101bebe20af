package flagvalue

import (
	"flag"
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	for _, c := range []struct {
		name string
		sets []string
		want []string
	}{
		{"default kept without Set", nil, []string{"default"}},
		{"comma separated", []string{" a, ,b ,"}, []string{"a", "b"}},
		{"one Set per YAML element", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"empty clears the default", []string{""}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := []string{"default"}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.Var(List(&v), "l", "")
			for _, s := range c.sets {
				if err := fs.Set("l", s); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(v, c.want) {
				t.Fatalf("got %q, want %q", v, c.want)
			}
			if got := fs.Lookup("l").Value.(flag.Getter).Get().([]string); !slices.Equal(got, c.want) {
				t.Fatalf("Get %q", got)
			}
		})
	}
}

func TestInt32(t *testing.T) {
	var n int32
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(Int32(&n), "n", "")
	if err := fs.Set("n", "1000"); err != nil || n != 1000 || fs.Lookup("n").Value.String() != "1000" {
		t.Fatalf("n %d, err %v", n, err)
	}
	for _, bad := range []string{"x", "4294967296"} {
		if err := fs.Set("n", bad); err == nil {
			t.Errorf("Set(%q) passed", bad)
		}
	}
	if fs.Lookup("n").Value.(flag.Getter).Get().(int32) != 1000 {
		t.Fatal("Get")
	}
}

func TestJoined(t *testing.T) {
	s := "nats://127.0.0.1:4222"
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(Joined(&s), "nats", "")
	for _, v := range []string{"nats://a:4222", " nats://b:4222, nats://c:4222"} {
		if err := fs.Set("nats", v); err != nil {
			t.Fatal(err)
		}
	}
	if s != "nats://a:4222,nats://b:4222,nats://c:4222" {
		t.Fatalf("got %q", s)
	}
	if got := fs.Lookup("nats").Value.(flag.Getter).Get().([]string); len(got) != 3 {
		t.Fatalf("Get %q", got)
	}
	if !IsList(fs.Lookup("nats").Value) {
		t.Fatal("IsList(Joined) = false")
	}
	var n int32
	if IsList(Int32(&n)) {
		t.Fatal("IsList(Int32) = true")
	}
}
