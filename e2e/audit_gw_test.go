package e2e

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/storage"
)

// TestAuditGWJoinThenCloseLeavesNoMember: a session that sends a join
// and closes its connection before the router's answer comes back must
// not stay a member of the room. The router took the join (the member has
// this gateway's session); the gateway, finding the connection gone when
// the answer comes, drops it locally but never tells the router the
// session left, so the member stays online in the room, counted and
// listed, for as long as the gateway runs. Each such connection adds
// another session to the member.
func TestAuditGWJoinThenCloseLeavesNoMember(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Router: fastPresence()})
	owner := c.Login(t, 0, "owner", "admin")
	if _, err := owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "ghost-room", GroupName: "ghost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.JoinGroup(ctxT(t), "ghost-room"); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 3; i++ {
		mallory := c.Login(t, 0, "mallory", "")
		join, err := proto.Marshal(&liveimpb.ClientFrame{Id: 1, Body: &liveimpb.ClientFrame_JoinGroup{JoinGroup: &liveimpb.JoinGroupRequest{GroupId: "ghost-room"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := mallory.WriteRaw(join); err != nil {
			t.Fatal(err)
		}
		_ = mallory.Close() // before the join's answer
	}

	// Every connection of mallory is gone: after the grace period (2 s)
	// mallory is no member, whatever became of the joins.
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := owner.QueryGroup(ctxT(t), "ghost-room")
		if err != nil {
			t.Fatal(err)
		}
		users, err := owner.ListRecentGroupUser(ctxT(t), "ghost-room")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range users.UserList {
			ids = append(ids, u.UserId)
		}
		last = fmt.Sprintf("onlineCount %d, recent users %v", info.GetStatistics().GetOnlineCount(), ids)
		if info.GetStatistics().GetOnlineCount() == 1 && !slices.Contains(ids, "mallory") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after mallory's connections closed (grace 2 s), mallory is still in the room: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gatedAppStore holds GetApp while the gate is closed: a router whose
// store (or app cache refill) is slow to answer a credential check.
type gatedAppStore struct {
	storage.Store
	mu      sync.Mutex
	closed  bool
	open    chan struct{}
	blocked chan struct{} // gets a value each time a GetApp waits at the gate
}

func (s *gatedAppStore) GetApp(ctx context.Context, appID string) (storage.App, error) {
	s.mu.Lock()
	closed, open := s.closed, s.open
	s.mu.Unlock()
	if closed {
		select {
		case s.blocked <- struct{}{}:
		default:
		}
		select {
		case <-open:
		case <-ctx.Done():
			return storage.App{}, ctx.Err()
		}
	}
	return s.Store.GetApp(ctx, appID)
}

func (s *gatedAppStore) shut() {
	s.mu.Lock()
	s.closed, s.open = true, make(chan struct{})
	s.mu.Unlock()
}

func (s *gatedAppStore) release() {
	s.mu.Lock()
	if s.closed {
		s.closed = false
		close(s.open)
	}
	s.mu.Unlock()
}

// TestAuditGWRefreshDoesNotStallOtherConnections: a RefreshTokenRequest
// waits for a router's credential check on the connection's epoll loop
// (handleRequest calls Gateway.refresh, which blocks in a NATS request),
// where every request must be asynchronous: while one session's refresh
// waits, no other connection of that loop is read, so one client (or the
// SDK's refresh wave of a big room) stalls every session of a loop, up to
// RequestTimeout per refresh frame. Here the router's app lookup is held;
// another client on the same loop must still get its ping answered.
func TestAuditGWRefreshDoesNotStallOtherConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("epoll path only")
	}
	gate := &gatedAppStore{blocked: make(chan struct{}, 1)}
	c := testcluster.Start(t, testcluster.Options{
		Gateway: gateway.Config{IO: gateway.IOEpoll, Loops: 1, RequestTimeout: 60 * time.Second},
		Router:  router.Config{AuthTimeout: 60 * time.Second},
		RouterStore: func(i int, s storage.Store) storage.Store {
			gate.Store = s
			return gate
		},
	})
	t.Cleanup(gate.release)
	alice := c.Login(t, 0, "alice", "")
	bob := c.Login(t, 0, "bob", "")

	gate.shut()
	// The router caches apps for 5 s: refresh until one refresh's check
	// reaches the store and waits there.
	refreshed := make(chan error, 1)
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			err := alice.RefreshToken(ctx, testcluster.Auth("alice", ""))
			cancel()
			if err != nil {
				refreshed <- err
				return
			}
			select {
			case <-gate.blocked:
				refreshed <- nil
				return
			default:
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	select {
	case <-gate.blocked:
	case err := <-refreshed:
		t.Fatalf("refresh ended before its credential check reached the store: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no credential check reached the store")
	}

	// alice's refresh waits for the router; bob's ping needs no router.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := bob.Ping(ctx)
	gate.release()
	if err != nil {
		t.Fatalf("bob's ping was not answered while alice's refresh waited for the router: %v", err)
	}
}

// heldLoads holds a router's LastSeq (read when a group is loaded) while
// held is set: a join that the router takes and answers only after the
// gateway's RequestTimeout.
type heldLoads struct {
	storage.Store
	held atomic.Bool
	open chan struct{}
}

func (s *heldLoads) LastSeq(ctx context.Context, appID, groupID string) (int64, error) {
	if s.held.Load() {
		select {
		case <-s.open:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Store.LastSeq(ctx, appID, groupID)
}

// TestJoinAnsweredLateLeavesNoMember: a join the router takes and answers
// after the gateway's RequestTimeout is 503 to the client, which is not in
// the group; the router's member of it must not stay. The late answer was
// dropped and nothing told the router, so the user stayed a member for as
// long as its gateway ran. Now the gateway sends the router the session's
// leave with the 503.
func TestJoinAnsweredLateLeavesNoMember(t *testing.T) {
	held := &heldLoads{open: make(chan struct{})}
	c := testcluster.Start(t, testcluster.Options{
		Router:  fastPresence(),
		Gateway: gateway.Config{RequestTimeout: time.Second},
		RouterStore: func(_ int, s storage.Store) storage.Store {
			held.Store = s
			return held
		},
	})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "late-room") // not loaded: nobody joined it
	held.held.Store(true)
	viewer := c.Login(t, 0, "viewer", "")
	_, err := viewer.JoinGroup(ctxT(t), "late-room")
	wantCode(t, err, 503)
	held.held.Store(false)
	close(held.open) // the router adds the member now, and answers nobody
	testcluster.WaitFor(t, 30*time.Second, func() error {
		users, err := retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListRecentGroupUserReply, error) {
			return owner.ListRecentGroupUser(ctx, "late-room")
		})
		if err != nil {
			return err
		}
		for _, u := range users.UserList {
			if u.UserId == "viewer" {
				return fmt.Errorf("viewer, told 503, is a member of the room")
			}
		}
		return nil
	})
}

// TestAuditGWConcurrentLoginsLeaveOneSession: two logins of one user at
// the same moment must not both stay (SPEC: a second login closes the
// older session). The router publishes each login's takeover notice on
// the user's subject before it answers, but a gateway subscribed to that
// subject only after the answer, so a notice published while the other
// login was still between its check and its subscription reached nobody,
// and both sessions lived: one user, many sessions, each with its own
// rate limits and group cap. Now the subscription comes first, and a
// notice of a later login that comes while a login waits ends it once
// it is done.
func TestAuditGWConcurrentLoginsLeaveOneSession(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateways: 2})
	const users = 10
	type pair struct {
		user string
		cls  [2]*client.Client
	}
	var pairs []*pair
	for i := 0; i < users; i++ {
		p := &pair{user: fmt.Sprintf("twin-%d", i)}
		for j := range p.cls {
			cl, err := testcluster.Dial(t, c.Gateway(j%2*(i%2)).URL) // even users: both on gateway 0; odd: one on each
			if err != nil {
				t.Fatal(err)
			}
			p.cls[j] = cl
		}
		pairs = append(pairs, p)
	}
	var wg sync.WaitGroup
	for _, p := range pairs {
		for _, cl := range p.cls {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				// Each its own token, as two devices of the user would have.
				if _, err := cl.Login(ctx, client.Login{AppID: testcluster.AppID, UserID: p.user, Auth: testcluster.Auth(p.user, "")}); err != nil {
					t.Errorf("login %s: %v", p.user, err)
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	alive := func(cl *client.Client) bool {
		select {
		case <-cl.Done():
			return false
		default:
			return true
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var both []string
		for _, p := range pairs {
			if alive(p.cls[0]) && alive(p.cls[1]) {
				both = append(both, p.user)
			}
		}
		if len(both) == 0 {
			// And one stays: a login is not closed by an earlier one.
			for _, p := range pairs {
				if !alive(p.cls[0]) && !alive(p.cls[1]) {
					t.Errorf("%s: both sessions closed", p.user)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after two concurrent logins, %d of %d users still have both sessions open: %v", len(both), users, both)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
