package scylla

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/liveim/liveim/storage"
)

// churn saves n viewers who come and go in batches, on s.
func churn(t testing.TB, s *Store, appID, groupID, tag string, n int) {
	t.Helper()
	const batch = 2_000
	for i := 0; i < n; i += batch {
		var come []storage.Member
		var gone []string
		for j := i; j < min(i+batch, n); j++ {
			id := fmt.Sprintf("%s-%d", tag, j)
			come = append(come, storage.Member{UserID: id, JoinTimeMs: int64(j)})
			gone = append(gone, id)
		}
		if err := s.SaveMembers(t.Context(), appID, groupID, come, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveMembers(t.Context(), appID, groupID, nil, gone); err != nil {
			t.Fatal(err)
		}
	}
}

// userIDs lists s's members of the group, sorted.
func userIDs(t testing.TB, s *Store, appID, groupID string) []string {
	t.Helper()
	ms, err := s.ListMembers(t.Context(), appID, groupID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.UserID)
	}
	slices.Sort(ids)
	return ids
}

// epochOf reads the group's member_epochs row.
func epochOf(t testing.TB, s *Store, appID, groupID string) memberEpoch {
	t.Helper()
	var e memberEpoch
	if err := s.query(t.Context(), `SELECT epoch, removed, live FROM member_epochs WHERE app_id = ? AND group_id = ?`, appID, groupID).
		Scan(&e.epoch, &e.removed, &e.live); err != nil {
		t.Fatal(err)
	}
	return e
}

// rowsIn counts the rows of one epoch's partition.
func rowsIn(t testing.TB, s *Store, appID, groupID string, epoch int64) int {
	t.Helper()
	ms, err := s.readMembers(t.Context(), appID, groupID, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// TestMemberEpochsAcrossRouters: two stores on one keyspace stand for two
// routers handing a group back and forth. Each moves the set to new
// epochs as viewers leave, drops the old partitions, and each sees what
// the other wrote once it loads the group again (ListMembers reads the
// epoch afresh, whatever it cached).
func TestMemberEpochsAcrossRouters(t *testing.T) {
	ks := randomKeyspace()
	a := openTest(t, ks)
	b, err := Open(t.Context(), testConfig(cqlHosts(t), ks), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := t.Context()

	if err := a.SaveMembers(ctx, "app", "room", []storage.Member{{UserID: "alice"}, {UserID: "bob"}}, nil); err != nil {
		t.Fatal(err)
	}
	churn(t, a, "app", "room", "a", memberRotateMin+1_000)
	e := epochOf(t, a, "app", "room")
	if e.epoch != 2 || e.live != 2 || e.removed != 1_000 {
		t.Fatalf("after %d leaves the epoch row is %+v; want epoch 2 of 2 members, 1000 removed since", memberRotateMin+1_000, e)
	}
	if n := rowsIn(t, a, "app", "room", 1); n != 0 {
		t.Fatalf("epoch 1 still holds %d rows after the set moved", n)
	}

	// b takes the group over: it loads it, then changes it and moves it on.
	if got := userIDs(t, b, "app", "room"); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("b lists %v; want [alice bob]", got)
	}
	if err := b.SaveMembers(ctx, "app", "room", []storage.Member{{UserID: "carol"}}, []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	churn(t, b, "app", "room", "b", memberRotateMin)
	if e := epochOf(t, b, "app", "room"); e.epoch != 3 || e.live != 2 {
		t.Fatalf("b's epoch row is %+v; want epoch 3 of 2 members", e)
	}

	// a takes it back: its cached epoch 2 is stale, and loading refreshes it.
	if got := userIDs(t, a, "app", "room"); !slices.Equal(got, []string{"bob", "carol"}) {
		t.Fatalf("a lists %v after b's changes; want [bob carol]", got)
	}
	if err := a.SaveMembers(ctx, "app", "room", []storage.Member{{UserID: "dave"}}, []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, b, "app", "room"); !slices.Equal(got, []string{"carol", "dave"}) {
		t.Fatalf("b lists %v after a's changes; want [carol dave]", got)
	}

	// Deleting the group drops its set and its epoch: a new group of the
	// same ID starts empty.
	if _, _, err := a.CreateGroup(ctx, storage.Group{AppID: "app", ID: "room", Name: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteGroup(ctx, "app", "room"); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, b, "app", "room"); len(got) != 0 {
		t.Fatalf("a deleted group lists %v", got)
	}
	if err := b.SaveMembers(ctx, "app", "room", []storage.Member{{UserID: "erin"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, a, "app", "room"); !slices.Equal(got, []string{"erin"}) {
		t.Fatalf("the group made again lists %v; want [erin]", got)
	}
}

// TestMemberMoveStepByStep: a set bigger than one copy step moves over
// several saves, and what changes between them, on either side of the
// copy's cursor, arrives in the new epoch as it was last written.
func TestMemberMoveStepByStep(t *testing.T) {
	ks := randomKeyspace()
	s := openTest(t, ks)
	ctx := t.Context()
	const n = 10_000 // three steps
	want := map[string]storage.Member{}
	var set []storage.Member
	for i := range n {
		m := storage.Member{UserID: fmt.Sprintf("m-%05d", i), JoinTimeMs: int64(i)}
		set = append(set, m)
		want[m.UserID] = m
	}
	save := func(ups []storage.Member, removes ...string) {
		t.Helper()
		if err := s.SaveMembers(ctx, "app", "room", ups, removes); err != nil {
			t.Fatal(err)
		}
		for _, m := range ups {
			want[m.UserID] = m
		}
		for _, id := range removes {
			delete(want, id)
		}
	}
	save(set)
	churn(t, s, "app", "room", "x", memberRotateMin) // the last save starts the move
	e, _ := s.cachedEpoch("app", "room")
	if !e.moving || e.copied != "m-03999" {
		t.Fatalf("after the deletions the epoch is %+v; want a move with m-03999 copied", e)
	}
	// Changes below the cursor (copied already) and above it (not yet).
	save([]storage.Member{{UserID: "a-new"}, {UserID: "n-new"}, {UserID: "m-00002", UserExt: "changed"}, {UserID: "m-09998", UserExt: "changed"}},
		"m-00001", "m-09999")
	if e, _ := s.cachedEpoch("app", "room"); !e.moving || e.copied != "m-07999" {
		t.Fatalf("after the second step the epoch is %+v; want m-07999 copied", e)
	}
	save(nil, "m-05000") // copied in the last step; this save's step ends the move
	if e := epochOf(t, s, "app", "room"); e.epoch != 2 || e.removed != 3 {
		t.Fatalf("after the move the epoch row is %+v; want epoch 2 with the 3 deletions made during the move", e)
	}
	if n := rowsIn(t, s, "app", "room", 1); n != 0 {
		t.Fatalf("epoch 1 still holds %d rows after the move", n)
	}
	other, err := Open(ctx, testConfig(cqlHosts(t), ks), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, st := range []*Store{s, other} {
		got, err := st.ListMembers(ctx, "app", "room")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListMembers = %d members, want %d", len(got), len(want))
		}
		for _, m := range got {
			if w, ok := want[m.UserID]; !ok || m.UserExt != w.UserExt || m.JoinTimeMs != w.JoinTimeMs {
				t.Fatalf("ListMembers has %+v; want %+v (present: %v)", m, w, ok)
			}
		}
	}
}

// TestMembersFromEarlierVersion: a group whose members an earlier liveim
// recorded in the members table keeps them, moved into its first epoch;
// one whose old record is past reading (the tombstones of its churn)
// starts with none recorded instead of failing to load.
func TestMembersFromEarlierVersion(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := t.Context()
	legacy := func(groupID string, m storage.Member) {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.query(ctx, `INSERT INTO members (app_id, group_id, user_id, data) VALUES (?, ?, ?, ?)`, "app", groupID, m.UserID, string(data)).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	alice := storage.Member{UserID: "alice", UserExt: "x", JoinTimeMs: 7, Sessions: []storage.MemberSession{{GatewayID: "gw", SessionID: "s1"}}}
	legacy("old", alice)
	legacy("old", storage.Member{UserID: "bob"})
	got, err := s.ListMembers(ctx, "app", "old")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y storage.Member) int { return strings.Compare(x.UserID, y.UserID) })
	if len(got) != 2 || got[0].UserID != "alice" || got[0].Sessions[0].SessionID != "s1" || got[1].UserID != "bob" {
		t.Fatalf("ListMembers of a group from an earlier version = %+v", got)
	}
	var n int
	if err := s.query(ctx, `SELECT COUNT(*) FROM members WHERE app_id = ? AND group_id = ?`, "app", "old").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the old record still has %d rows (%v)", n, err)
	}
	if err := s.SaveMembers(ctx, "app", "old", []storage.Member{{UserID: "carol"}}, []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, s, "app", "old"); !slices.Equal(got, []string{"alice", "carol"}) {
		t.Fatalf("after a change the group lists %v; want [alice carol]", got)
	}

	// An old record with more tombstones than a read may step over.
	legacy("dead", storage.Member{UserID: "ghost"})
	for i := 0; i < 101_000; i += 2_000 {
		b := s.session.Batch(0).WithContext(ctx)
		for j := i; j < i+2_000; j++ {
			b.Query(`DELETE FROM members WHERE app_id = ? AND group_id = ? AND user_id = ?`, "app", "dead", fmt.Sprintf("gone-%d", j))
		}
		if err := b.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	if got := userIDs(t, s, "app", "dead"); len(got) != 0 {
		t.Fatalf("an unreadable old record lists %v; want none", got)
	}
	if err := s.SaveMembers(ctx, "app", "dead", []storage.Member{{UserID: "dan"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, s, "app", "dead"); !slices.Equal(got, []string{"dan"}) {
		t.Fatalf("the group lists %v; want [dan]", got)
	}
}

// BenchmarkMemberMove: what a save of one leave costs while a room of
// 50,000 members moves to a new epoch (each save copies one step of the
// set), the wait a router's worker sees then; and the whole move, per
// member.
func BenchmarkMemberMove(b *testing.B) {
	s := openBench(b)
	const members = 50_000
	var set []storage.Member
	for i := range members {
		set = append(set, storage.Member{UserID: fmt.Sprintf("viewer-%d", i), UserExt: "ext", JoinTimeMs: int64(i),
			Sessions: []storage.MemberSession{{GatewayID: "gateway-1", SessionID: fmt.Sprintf("session-%d", i)}}})
	}
	for chunk := range slices.Chunk(set, 5_000) {
		if err := s.SaveMembers(b.Context(), "app", "room", chunk, nil); err != nil {
			b.Fatal(err)
		}
	}
	moves := 0
	for b.Loop() {
		e, _ := s.cachedEpoch("app", "room")
		if !e.moving {
			moves++
			e.removed = max(memberRotateMin, e.live/2) // due: this save starts a move
			s.cacheEpoch("app", "room", e)
		}
		if err := s.SaveMembers(b.Context(), "app", "room", nil, []string{"nobody"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(moves)/members, "µs/member-moved")
}

// TestDriverWarningsLogged: what the CQL server warns about (here a read
// stepping over 1,500 tombstones, past its threshold of 1,000) reaches the
// store's logger, not the process's standard error.
func TestDriverWarningsLogged(t *testing.T) {
	var buf syncBuffer
	cfg := testConfig(cqlHosts(t), randomKeyspace())
	s, err := Open(t.Context(), cfg, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = DropKeyspace(context.Background(), cfg)
	})
	var gone []string
	for i := range 1_500 {
		gone = append(gone, fmt.Sprintf("gone-%d", i))
	}
	if err := s.SaveMembers(t.Context(), "app", "room", []storage.Member{{UserID: "stay"}}, gone); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, s, "app", "room"); !slices.Equal(got, []string{"stay"}) {
		t.Fatalf("lists %v; want [stay]", got)
	}
	out := buf.String()
	if !strings.Contains(out, `"component":"gocql"`) || !strings.Contains(out, "tombstone") {
		t.Fatalf("the server's tombstone warning is not in the store's log:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the driver's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestNewGroupStartsAtEpochOne: a group created by this version starts
// its member set at epoch 1, so its first load does not look for (nor
// carry over) a record in the members table of earlier versions.
func TestNewGroupStartsAtEpochOne(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := t.Context()
	if _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "app", ID: "room"}); err != nil {
		t.Fatal(err)
	}
	if e := epochOf(t, s, "app", "room"); e.epoch != 1 || e.removed != 0 || e.live != 0 {
		t.Fatalf("a new group's epoch row is %+v; want epoch 1, empty", e)
	}
	// A stray old-table row (none is written any more) is not carried over.
	if err := s.query(ctx, `INSERT INTO members (app_id, group_id, user_id, data) VALUES ('app', 'room', 'ghost', '{"UserID":"ghost"}')`).Exec(); err != nil {
		t.Fatal(err)
	}
	if got := userIDs(t, s, "app", "room"); len(got) != 0 {
		t.Fatalf("a new group lists %v; want none", got)
	}
}
