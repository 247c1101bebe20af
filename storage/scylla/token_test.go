package scylla

import "testing"

// FuzzParseToken: a page token from a client is either refused or one the
// store could have made, and it formats back to itself.
func FuzzParseToken(f *testing.F) {
	f.Add("")
	f.Add("12:3")
	f.Add("12")
	f.Add("-1:0")
	f.Add("9223372036854775807:9223372036854775807")
	f.Fuzz(func(t *testing.T, tok string) {
		p, ok := parseToken(tok)
		if !ok || tok == "" {
			return
		}
		if p.seq < 1 || p.bucket < 0 {
			t.Fatalf("%q accepted as %+v", tok, p)
		}
		again := itoa(p.seq)
		if p.hasBucket {
			again += ":" + itoa(p.bucket)
		}
		if q, ok := parseToken(again); !ok || q != p {
			t.Fatalf("%q reads as %+v, which formats as %q", tok, p, again)
		}
	})
}
