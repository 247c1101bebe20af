package router

import (
	"context"
	"fmt"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
)

// emit publishes a callback event of the app if the app asked for its
// kind. It never waits for the app (package callback); it runs on the
// group's worker, after what it reports is done (a message stored, a
// member added), so events of a group go out in the order they happened.
func (r *Router) emit(ctx context.Context, appID string, ev callback.Event) {
	if ok, err := r.wants(ctx, appID, ev.Type); !ok || err != nil {
		return
	}
	ev.AppID = appID
	r.events.Publish(ev)
}

// wants reports whether the app asked for callback events of kind.
func (r *Router) wants(ctx context.Context, appID, kind string) (bool, error) {
	app, err := r.apps.get(ctx, appID)
	if err != nil {
		return false, fmt.Errorf("get app: %w", err)
	}
	return !app.Disabled && callback.Wants(app.CallbackURL, app.CallbackEvents, kind), nil
}

// messageEvent queues the group.message event of a stored (or sequenced)
// message and returns the channel that hears when the callback stream
// holds it (nil when the app wants no such event): its send is answered
// only then (answerStored), so a router killed after the acknowledgement
// cannot lose the event (the fault test lost such events from the
// publisher's queue).
//
// The event's ID is derived from the message's, so the event of a send
// published again (its retry, here or on the router that took the group
// over) is one event to the app: the stream drops the repeat within its
// duplicates window, and an app drops a later one by ID.
func (r *Router) messageEvent(ctx context.Context, appID string, m *liveimpb.Message) (<-chan error, error) {
	if ok, err := r.wants(ctx, appID, callback.GroupMessage); !ok || err != nil {
		return nil, err
	}
	return r.events.Stored(callback.Event{
		ID: messageEventID(appID, m.MessageId), Type: callback.GroupMessage, AppID: appID, GroupID: m.GroupId, Message: callbackMessage(m),
	}), nil
}

// answerStored answers a send with rep once the HIGH stream acknowledged
// its message (ack, nil for NORMAL) and its event is stored (stored and
// queued come from messageEvent). The waits are off the worker, so a
// JetStream or callback stream that is slow (NATS recovering) holds up no
// other request of the worker's groups. When the stream does not take the
// event within Config.EventWait, the event stays queued and a send with a
// client message ID (e, its entry) is answered 503: its retry publishes
// the event again before it is answered (repeatedSend). A send without
// one is answered anyway, as its retry would be another message.
func (r *Router) answerStored(j job, e *sentEntry, ack *highAck, stored <-chan error, queued error, rep *liveimpb.Reply) (*liveimpb.Reply, error) {
	settle := func(err error) (*liveimpb.Reply, error) {
		if err == nil {
			if e != nil {
				e.setEventStored()
			}
			return rep, nil
		}
		r.log.Warn("callback event of a message not stored", telemetry.LogAppID, j.appID, telemetry.LogGroupID, j.groupID, "err", err)
		if e == nil {
			return rep, nil
		}
		return nil, liveimpb.ErrUnavailable.With("the message's callback event is not stored yet; retry with the same clientMsgId")
	}
	answer := func() (*liveimpb.Reply, error) {
		if ack != nil {
			if err := ack.wait(); err != nil {
				return nil, err // a retry with the same clientMsgId publishes it again
			}
			if e != nil {
				e.setDelivered()
			}
		}
		if queued != nil || stored == nil {
			return settle(queued)
		}
		return settle(callback.WaitStored(stored, r.cfg.EventWait))
	}
	if ack == nil && (queued != nil || stored == nil) {
		return answer() // nothing to wait for
	}
	if r.offWorker(func() { j.done(answer()) }) {
		return nil, errLater
	}
	return answer()
}

// messageEventID is the event ID of a message's group.message event.
func messageEventID(appID, messageID string) string {
	return derivedMessageID(appID, "~events", callback.GroupMessage, messageID)
}

// emitUser publishes a group event about a user.
func (r *Router) emitUser(appID, groupID, kind string, u *liveimpb.User) {
	r.emit(context.Background(), appID, callback.Event{Type: kind, GroupID: groupID, User: &callback.User{UserID: u.GetUserId(), UserExtension: u.GetUserExtension()}})
}

// callbackMessage is a message as events show it.
func callbackMessage(m *liveimpb.Message) *callback.Message {
	level := "normal"
	if m.Level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
		level = "high"
	}
	return &callback.Message{
		MessageID: m.MessageId, GroupID: m.GroupId, Type: m.Type, SenderID: m.Sender.GetUserId(), SenderExtension: m.Sender.GetUserExtension(),
		Data: m.Data, Seqnum: m.Seqnum, TimestampMs: m.Timestamp, Level: level, RepeatCount: m.RepeatCount, TotalMsgs: m.TotalMsgs,
	}
}
