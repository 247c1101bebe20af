package router

import (
	"context"

	"github.com/liveim/liveim/callback"
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
