package gateway

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDisconnectReasons: every close the gateway sends (each call of
// closeWith in the package's code) counts under a reason of its own, never
// under "other", so a new way to close a connection cannot slip past the
// metric unnoticed.
func TestDisconnectReasons(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	consts := map[string]string{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								consts[n.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
		}
	}
	calls := 0
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "closeWith" || len(call.Args) != 3 {
				return true
			}
			calls++
			var text string
			switch a := call.Args[1].(type) {
			case *ast.BasicLit:
				text, _ = strconv.Unquote(a.Value)
			case *ast.Ident:
				v, ok := consts[a.Name]
				if !ok {
					t.Errorf("%s: closeWith with reason %s, not a string constant", fset.Position(call.Pos()), a.Name)
					return true
				}
				text = v
			default:
				t.Errorf("%s: closeWith with a computed reason: give it a constant text and a disconnect reason", fset.Position(call.Pos()))
				return true
			}
			if r := disconnectReason(text); r == reasonOther {
				t.Errorf("%s: close reason %q counts as %q: add it to disconnectReason", fset.Position(call.Pos()), text, r)
			}
			return true
		})
	}
	if calls < 10 {
		t.Fatalf("found %d calls of closeWith; the test no longer sees them", calls)
	}
}
