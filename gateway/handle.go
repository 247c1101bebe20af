package gateway

import (
	"errors"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
)

// handleBytes handles every complete frame at the start of data and
// returns how many bytes it used, or -1 when the connection was closed.
func (c *conn) handleBytes(data []byte) int {
	used := 0
	for used < len(data) {
		h, payload, n, err := parseFrame(data[used:], c.gw.cfg.MaxFrameBytes)
		switch {
		case errors.Is(err, errFrameTooLarge):
			c.closeWith(ws.StatusMessageTooBig, "413 frame too large", nil)
			return -1
		case err != nil:
			c.closeWith(ws.StatusProtocolError, "protocol error", nil)
			return -1
		case n == 0:
			return used
		}
		used += n
		if !c.handleFrame(h, payload) {
			return -1
		}
	}
	return used
}

// handleFrame handles one frame; it reports false when the connection
// should not be read further.
func (c *conn) handleFrame(h frameHeader, payload []byte) bool {
	c.mu.Lock()
	closing := c.closing || c.closed
	c.mu.Unlock()
	if closing {
		if h.op == ws.OpClose {
			c.closeNow()
			return false
		}
		return true // drain until the peer answers our close
	}
	switch h.op {
	case ws.OpPing:
		c.send(appendFrame(nil, ws.OpPong, payload), false)
	case ws.OpPong:
	case ws.OpClose:
		c.closeWith(closeReply(payload), "", nil)
		c.closeNow()
		return false
	case ws.OpBinary:
		if !h.fin {
			c.closeWith(ws.StatusUnsupportedData, "fragmented frames are not supported", nil)
			return false
		}
		var f liveimpb.ClientFrame
		if err := proto.Unmarshal(payload, &f); err != nil {
			c.reply(0, liveimpb.ErrorReply(liveimpb.InvalidParam("frame", "not a ClientFrame: %v", err)))
			return true
		}
		c.handleRequest(&f)
	default: // text and continuation frames
		c.closeWith(ws.StatusUnsupportedData, "binary frames only", nil)
		return false
	}
	return true
}

// reply sends rep as the answer to request id.
func (c *conn) reply(id uint32, rep *liveimpb.Reply) {
	rep.Id = id
	c.send(encodeServerFrame(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Reply{Reply: rep}}), false)
}

func (c *conn) replyErr(id uint32, err error) {
	c.reply(id, liveimpb.ErrorReply(err))
}

// handleRequest runs one client request. It must not block: anything that
// needs the router goes out as an asynchronous NATS request.
func (c *conn) handleRequest(f *liveimpb.ClientFrame) {
	gw := c.gw
	switch b := f.Body.(type) {
	case nil:
		c.replyErr(f.Id, liveimpb.InvalidParam("body", "empty request"))
		return
	case *liveimpb.ClientFrame_Ping:
		c.reply(f.Id, &liveimpb.Reply{Body: &liveimpb.Reply_Pong{Pong: &liveimpb.PongReply{ServerTime: gw.now().UnixMilli()}}})
		return
	case *liveimpb.ClientFrame_Login:
		if c.sess.Load() != nil || !c.loggingIn.CompareAndSwap(false, true) {
			c.replyErr(f.Id, liveimpb.ErrAlreadyLoggedIn)
			return
		}
		go gw.login(c, f.Id, b.Login)
		return
	}
	s := c.sess.Load()
	if s == nil {
		c.replyErr(f.Id, liveimpb.ErrNoSession.With("login first"))
		return
	}
	switch f.Body.(type) {
	case *liveimpb.ClientFrame_SendGroupMessage, *liveimpb.ClientFrame_SendC2CMessage:
		// Messages have their own, lower rate (SendRate) below.
	default:
		if !s.allowRequest(&gw.cfg, gw.now()) {
			c.replyErr(f.Id, liveimpb.ErrTooFast.With("more than %.0f requests/s from this session", gw.cfg.RequestRate))
			return
		}
	}
	groupID, hasGroup := liveimpb.FrameGroupID(f)
	if hasGroup {
		if _, creating := f.Body.(*liveimpb.ClientFrame_CreateGroup); !(creating && groupID == "") {
			if err := ids.Check("groupId", groupID); err != nil {
				c.replyErr(f.Id, err)
				return
			}
		}
	}
	switch b := f.Body.(type) {
	case *liveimpb.ClientFrame_Logout:
		c.reply(f.Id, &liveimpb.Reply{})
		c.closeWith(ws.StatusNormalClosure, "logout", nil)
	case *liveimpb.ClientFrame_RefreshToken:
		// The router's check waits, so off the loop, as a login: on it,
		// every connection of the loop waited for it
		// (e2e.TestAuditGWRefreshDoesNotStallOtherConnections).
		if !c.refreshing.CompareAndSwap(false, true) {
			c.replyErr(f.Id, liveimpb.ErrTooFast.With("a token refresh of this session is under way"))
			return
		}
		go func() {
			defer c.refreshing.Store(false)
			if err := gw.refresh(c, s, b.RefreshToken); err != nil {
				c.replyErr(f.Id, err)
				return
			}
			c.reply(f.Id, &liveimpb.Reply{})
		}()
	case *liveimpb.ClientFrame_JoinGroup:
		gw.join(c, s, f)
	case *liveimpb.ClientFrame_LeaveGroup:
		if !c.joined(groupID) {
			c.replyErr(f.Id, liveimpb.ErrNotJoined)
			return
		}
		c.leaveRoom(s.appID, groupID)
		gw.forward(c, s, f, groupID, nil)
	case *liveimpb.ClientFrame_SendGroupMessage:
		if !c.joined(groupID) {
			c.replyErr(f.Id, liveimpb.ErrNotJoined)
			return
		}
		if !s.allowSend(&gw.cfg, gw.now()) {
			c.replyErr(f.Id, liveimpb.ErrTooFast.With("more than %.0f messages/s from this session", gw.cfg.SendRate))
			return
		}
		gw.metrics.messageIn(f)
		gw.forward(c, s, f, groupID, nil)
	case *liveimpb.ClientFrame_SendC2CMessage:
		if !s.allowSend(&gw.cfg, gw.now()) {
			c.replyErr(f.Id, liveimpb.ErrTooFast.With("more than %.0f messages/s from this session", gw.cfg.SendRate))
			return
		}
		gw.metrics.messageIn(f)
		gw.forward(c, s, f, groupID, nil)
	case *liveimpb.ClientFrame_ListRecentMessage, *liveimpb.ClientFrame_ResumeGroup:
		if !c.joined(groupID) {
			c.replyErr(f.Id, liveimpb.ErrNotJoined)
			return
		}
		gw.forward(c, s, f, groupID, nil)
	default:
		gw.forward(c, s, f, groupID, nil)
	}
}

// encodeServerFrame returns sf as one complete WebSocket binary frame.
func encodeServerFrame(sf *liveimpb.ServerFrame) []byte {
	size := proto.Size(sf)
	buf := appendHeader(make([]byte, 0, headerLen(size)+size), ws.OpBinary, size)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, sf)
	if err != nil {
		// Our own messages always marshal; fall back to an error reply.
		return encodeServerFrame(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Reply{Reply: liveimpb.ErrorReply(err)}})
	}
	return buf
}
