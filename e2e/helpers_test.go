package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

// cluster2 starts the configuration issue 3 asks every operation to be
// shown on: two routers and two gateways on one in-process NATS.
func cluster2(t testing.TB, rc router.Config) *testcluster.Cluster {
	t.Helper()
	return testcluster.Start(t, testcluster.Options{Routers: 2, Gateways: 2, Router: rc})
}

// fastPresence is a router config with short presence timers.
func fastPresence() router.Config {
	return router.Config{MemberGrace: 2 * time.Second, MemberChangeInterval: 100 * time.Millisecond, GatewayTimeout: 3 * time.Second}
}

// waitEvent returns the next event of cl for which pick returns non-nil,
// skipping others.
func waitEvent[T any](t testing.TB, cl *client.Client, pick func(*liveimpb.Event) *T) *T {
	t.Helper()
	var got *T
	testcluster.NextEvent(t, cl, 10*time.Second, func(ev *liveimpb.Event) bool {
		got = pick(ev)
		return got != nil
	})
	return got
}

func memberChange(ev *liveimpb.Event) *liveimpb.MemberChangeEvent { return ev.GetMemberChange() }
func muteChange(ev *liveimpb.Event) *liveimpb.MuteChangeEvent     { return ev.GetMuteChange() }
func infoChange(ev *liveimpb.Event) *liveimpb.InfoChangeEvent     { return ev.GetInfoChange() }
func exitEvent(ev *liveimpb.Event) *liveimpb.ExitEvent            { return ev.GetExit() }
func groupMsg(ev *liveimpb.Event) *liveimpb.Message               { return ev.GetGroupMessage() }
func deleted(ev *liveimpb.Event) *liveimpb.DeleteGroupMessageEvent {
	return ev.GetDeleteGroupMessage()
}

// send sends a NORMAL message to a joined group and returns its reply.
func send(t testing.TB, cl *client.Client, groupID, data string) *liveimpb.SendMessageReply {
	t.Helper()
	rep, err := cl.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: groupID, Type: chatType, Data: data})
	if err != nil {
		t.Fatalf("send %q: %v", data, err)
	}
	return rep
}

// wantCode fails unless err carries the catalogue code.
func wantCode(t testing.TB, err error, code int32) {
	t.Helper()
	if got := testcluster.ErrCode(err); got != code {
		t.Fatalf("got %v (code %d), want %d", err, got, code)
	}
}

// sendRetrying sends req, retrying a 503 (a router busy or taking the
// group over) the way the SDK does: req keeps the client message ID the
// first try gave it, so a retry never stores or delivers the message twice.
func sendRetrying(ctx context.Context, cl *client.Client, req *liveimpb.SendGroupMessageRequest) (*liveimpb.SendMessageReply, error) {
	var err error
	for attempt := range 8 {
		var rep *liveimpb.SendMessageReply
		if rep, err = cl.SendGroupMessage(ctx, req); testcluster.ErrCode(err) != 503 {
			return rep, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
	return nil, err
}

// retry503 runs a read again after a 503 (a router busy, its store slow or
// the group moving; nothing is lost), as an app retries what the server
// calls temporarily unavailable: the tests that use it check what a read
// answers, not that a loaded machine answers it within the gateway's
// request timeout (the CQL server once made a listMessage of
// TestMessageOptionsAndHistory take longer, under ci-local).
func retry503[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := read(ctx)
		if testcluster.ErrCode(err) != 503 || attempt == 4 {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
}

// highStream returns the HIGH stream shard of a group of the test app, and
// its subject there, for a cluster of routers with the default
// --high-streams.
func highStream(groupID string) (stream, subj string) {
	shard := subject.HighShard(testcluster.AppID, groupID, router.Config{}.WithDefaults().HighStreams)
	return subject.HighStream(shard), subject.GroupHigh(testcluster.AppID, groupID, shard)
}
