// Package flagvalue holds the flag.Value types liveim's Config structs
// register beside the standard library's: a list of strings, a
// comma-separated string, and an int32.
// Each prints its value (String) and returns it typed (Get), so a target's
// effective settings can be printed back, and a list takes both forms a
// setting arrives in: "a,b" from the command line or a variable, and one
// Set call per element from a YAML list in a --config file.
//
//	fs.Var(flagvalue.List(&c.Hosts), "scylla-hosts", "contact points, comma separated")
//
// The values are not safe for concurrent use; flags are parsed once, at
// start.
package flagvalue

import (
	"errors"
	"flag"
	"strconv"
	"strings"
)

// List returns a flag.Value for a list of strings. Each Set adds the
// comma-separated, space-trimmed, non-empty items of its argument; the
// first Set replaces what *p held before (its default).
func List(p *[]string) flag.Getter { return &list{p: p} }

type list struct {
	p   *[]string
	set bool
}

func (l *list) Set(v string) error {
	if !l.set {
		*l.p, l.set = nil, true
	}
	for x := range strings.SplitSeq(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l.p = append(*l.p, x)
		}
	}
	return nil
}

func (l *list) String() string {
	if l == nil || l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

// Get returns the list, a []string.
func (l *list) Get() any { return append([]string(nil), *l.p...) }

// Joined returns a flag.Value for a string holding a comma-separated list
// (NATS URLs): like List, but kept joined with commas.
func Joined(p *string) flag.Getter { return &joined{p: p} }

type joined struct {
	p    *string
	list []string
	set  bool
}

func (j *joined) Set(v string) error {
	if !j.set {
		j.list, j.set = nil, true
	}
	if err := (&list{p: &j.list, set: true}).Set(v); err != nil {
		return err
	}
	*j.p = strings.Join(j.list, ",")
	return nil
}

func (j *joined) String() string {
	if j == nil || j.p == nil {
		return ""
	}
	return *j.p
}

// Get returns the items, a []string.
func (j *joined) Get() any {
	var items []string
	_ = (&list{p: &items, set: true}).Set(*j.p)
	return items
}

// IsList reports whether v is a List or Joined value, one that takes a
// list: several Set calls add up instead of the last one winning.
func IsList(v flag.Value) bool {
	switch v.(type) {
	case *list, *joined:
		return true
	}
	return false
}

// Int32 returns a flag.Value for an int32.
func Int32(p *int32) flag.Getter { return (*int32Value)(p) }

type int32Value int32

func (i *int32Value) Set(v string) error {
	n, err := strconv.ParseInt(v, 0, 32)
	if err != nil {
		return numError(err)
	}
	*i = int32Value(n)
	return nil
}

func (i *int32Value) String() string {
	if i == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*i), 10)
}

// Get returns the value, an int32.
func (i *int32Value) Get() any { return int32(*i) }

// numError turns strconv's error into the flag package's wording.
func numError(err error) error {
	switch {
	case errors.Is(err, strconv.ErrSyntax):
		return errParse
	case errors.Is(err, strconv.ErrRange):
		return errRange
	}
	return err
}

var (
	errParse = errors.New("parse error")
	errRange = errors.New("value out of range")
)
