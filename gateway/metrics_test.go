package gateway

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// TestConnectMetricsOnEachPath: connections are counted the same on each
// I/O path: every adopted connection is a connect, and its end a
// disconnect under its reason, whether the gateway closes it (a text of
// closeWith), the client sends a close frame, or the socket just ends.
func TestConnectMetricsOnEachPath(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		runEngine(t, g, path)
		disconnects := func(reason string) float64 {
			return testutil.ToFloat64(g.metrics.disconnects.WithLabelValues(reason))
		}

		byServer, _ := adoptPair(t, g, 0, nil)
		byServer.closeWith(ws.StatusNormalClosure, "logout", nil)

		_, client := adoptPair(t, g, 0, nil)
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))); err != nil {
			t.Fatal(err)
		}

		_, lost := adoptPair(t, g, 0, nil)
		_ = lost.Close()

		waitFor(t, 10*time.Second, func() error {
			if n := g.metrics.connects.Load(); n != 3 {
				return fmt.Errorf("%d connects counted, want 3", n)
			}
			if a, b, c := disconnects(reasonLogout), disconnects(reasonClientClosed), disconnects(reasonConnectionLost); a != 1 || b != 1 || c != 1 {
				return fmt.Errorf("disconnects: %v logout, %v client_closed, %v connection_lost; want 1 each", a, b, c)
			}
			if n := g.metrics.connections.Load(); n != 0 {
				return fmt.Errorf("%d connections open, want 0", n)
			}
			return nil
		})
		if n := disconnects(reasonOther); n != 0 {
			t.Fatalf("%v disconnects counted as other", n)
		}
	})
}
