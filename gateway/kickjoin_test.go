package gateway

import "testing"

// TestKickDuringJoin: a kick notice for a group whose join is in flight
// on the connection makes that join's answer a refusal (the notice and
// the answer reach the gateway by different paths, so the answer of a
// join the router made before the kick can come second); the mark ends
// with the group's joins in flight, and other groups' joins are not
// touched.
func TestKickDuringJoin(t *testing.T) {
	c := &conn{}
	if !c.reserveJoin("g", 10) || !c.reserveJoin("g", 10) || !c.reserveJoin("h", 10) {
		t.Fatal("reserveJoin refused")
	}
	c.kickJoins("g")
	c.kickJoins("x") // no join of x in flight: nothing to mark
	if !c.endJoin("g") || !c.endJoin("g") {
		t.Fatal("a join of g in flight when g's kick came was not refused")
	}
	if c.endJoin("h") {
		t.Fatal("a join of another group was refused")
	}
	if c.joins != nil {
		t.Fatalf("joins %+v left after every join ended", c.joins)
	}
	if !c.reserveJoin("g", 10) || c.endJoin("g") {
		t.Fatal("a join after the kick's joins ended was refused")
	}
	// At the limit, joins in flight count with the groups joined.
	c.groups = []string{"a"}
	if !c.reserveJoin("b", 2) || c.reserveJoin("c", 2) {
		t.Fatal("the limit does not count joins in flight")
	}
}
