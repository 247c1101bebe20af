package serverapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// rpcClient sends RouterRequests as the server API and waits for their
// replies on one inbox subscription.
type rpcClient struct {
	nc      *nats.Conn
	cluster Cluster
	timeout time.Duration
	inbox   string

	mu   sync.Mutex // leaf lock
	sub  *nats.Subscription
	next uint64
	wait map[uint64]chan *nats.Msg
}

func newRPCClient(nc *nats.Conn, cluster Cluster, timeout time.Duration) *rpcClient {
	return &rpcClient{nc: nc, cluster: cluster, timeout: timeout, inbox: "_INBOX.api." + nuid.Next() + ".", wait: make(map[uint64]chan *nats.Msg)}
}

func (c *rpcClient) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		return nil
	}
	sub, err := c.nc.Subscribe(c.inbox+"*", c.onReply)
	if err != nil {
		return fmt.Errorf("serverapi: subscribe inbox: %w", err)
	}
	c.sub = sub
	return nil
}

func (c *rpcClient) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		_ = c.sub.Unsubscribe()
		c.sub = nil
	}
}

func (c *rpcClient) onReply(m *nats.Msg) {
	token, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, c.inbox), 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	ch := c.wait[token]
	delete(c.wait, token)
	c.mu.Unlock()
	if ch != nil {
		ch <- m // buffered: never blocks
	}
}

// call sends req as the server API to the router that serves it (the
// owner of groupID, or any router when groupID is empty) and returns its
// reply; a reply with a code is returned as that catalogue error. A 503
// (the group moving between routers, a router restarting) is retried a
// few times, so callers see it only when the cluster is really down;
// every operation sent here is safe to repeat (sends carry a
// client_msg_id).
func (c *rpcClient) call(ctx context.Context, appID, groupID string, req *liveimpb.RouterRequest) (*liveimpb.Reply, error) {
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		rep, err := c.once(ctx, appID, groupID, data)
		if err == nil {
			err = liveimpb.ReplyError(rep)
		}
		if !errors.Is(err, liveimpb.ErrUnavailable) || attempt == 4 {
			return rep, err
		}
		select {
		case <-time.After(backoff):
			backoff *= 3
		case <-ctx.Done():
			return nil, liveimpb.ErrUnavailable.With("%v", ctx.Err())
		}
	}
}

func (c *rpcClient) once(ctx context.Context, appID, groupID string, data []byte) (*liveimpb.Reply, error) {
	ch := make(chan *nats.Msg, 1)
	c.mu.Lock()
	c.next++
	token := c.next
	c.wait[token] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.wait, token)
		c.mu.Unlock()
	}()
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	inbox := c.inbox + strconv.FormatUint(token, 10)
	msg := nats.NewMsg(subject.Any(appID))
	msg.Data = data
	if groupID != "" {
		msg.Subject = subject.RPC(appID, groupID)
		msg.Header.Set(subject.HeaderReply, inbox)
		msg.Header.Set(subject.HeaderDeadline, strconv.FormatInt(deadline.UnixMilli(), 10))
	} else {
		msg.Reply = inbox
	}
	c.cluster.SignServer(msg.Header, data)
	if err := c.nc.PublishMsg(msg); err != nil {
		return nil, liveimpb.ErrUnavailable.With("publish: %v", err)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case m := <-ch:
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return nil, liveimpb.ErrUnavailable.With("no router is running")
		}
		rep := &liveimpb.Reply{}
		if err := proto.Unmarshal(m.Data, rep); err != nil {
			return nil, fmt.Errorf("malformed router reply: %w", err)
		}
		return rep, nil
	case <-timer.C:
		return nil, liveimpb.ErrUnavailable.With("router timeout")
	case <-ctx.Done():
		return nil, liveimpb.ErrUnavailable.With("%v", ctx.Err())
	}
}

// frame sends a client operation as the server API, acting for userID
// (empty: the system).
func (c *rpcClient) frame(ctx context.Context, appID, groupID, userID string, f *liveimpb.ClientFrame, with ...func(*liveimpb.RouterRequest)) (*liveimpb.Reply, error) {
	req := &liveimpb.RouterRequest{Caller: serverCaller(appID, userID), Frame: f}
	for _, w := range with {
		w(req)
	}
	return c.call(ctx, appID, groupID, req)
}

func serverCaller(appID, userID string) *liveimpb.Caller {
	return &liveimpb.Caller{AppId: appID, UserId: userID, Server: true}
}
