package router

import (
	"context"
	"time"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
)

// emit publishes a callback event of the app if the app asked for its
// kind. It never waits for the app (package callback); it runs on the
// group's worker, after what it reports is done (a message stored, a
// member added), so events of a group go out in the order they happened.
func (r *Router) emit(ctx context.Context, appID string, ev callback.Event) {
	app, err := r.apps.get(ctx, appID)
	if err != nil || app.Disabled || !callback.Wants(app.CallbackURL, app.CallbackEvents, ev.Type) {
		return
	}
	ev.AppID = appID
	r.events.Publish(ev)
}

// storedEventWait bounds how long a send waits for its callback event to
// be stored before it is answered anyway.
const storedEventWait = 2 * time.Second

// emitStored is emit that returns once the event is in the callback
// stream: a message's event is stored before its send is acknowledged,
// so a router killed right after the acknowledgement cannot lose it (the
// fault test lost such events from the publisher's queue). When the
// stream does not take it in time (NATS recovering), the send goes on and
// the event stays queued.
func (r *Router) emitStored(ctx context.Context, appID string, ev callback.Event) {
	app, err := r.apps.get(ctx, appID)
	if err != nil || app.Disabled || !callback.Wants(app.CallbackURL, app.CallbackEvents, ev.Type) {
		return
	}
	ev.AppID = appID
	if err := r.events.PublishStored(ev, storedEventWait); err != nil {
		r.log.Warn("callback event not stored before the reply", telemetry.LogAppID, appID, "type", ev.Type, "err", err)
	}
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
