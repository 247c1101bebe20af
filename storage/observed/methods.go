package observed

import (
	"context"

	"github.com/liveim/liveim/storage"
)

// PutApp implements storage.Store.
func (o *Store) PutApp(ctx context.Context, app storage.App) (err error) {
	ctx, done := o.observe(ctx, "PutApp", apps, app.ID, "")
	defer func() { done(err) }()
	return o.s.PutApp(ctx, app)
}

// UpdateApp implements storage.Store.
func (o *Store) UpdateApp(ctx context.Context, appID string, change func(*storage.App) error) (_ storage.App, err error) {
	ctx, done := o.observe(ctx, "UpdateApp", apps, appID, "")
	defer func() { done(err) }()
	return o.s.UpdateApp(ctx, appID, change)
}

// GetApp implements storage.Store.
func (o *Store) GetApp(ctx context.Context, appID string) (_ storage.App, err error) {
	ctx, done := o.observe(ctx, "GetApp", apps, appID, "")
	defer func() { done(err) }()
	return o.s.GetApp(ctx, appID)
}

// ListApps implements storage.Store.
func (o *Store) ListApps(ctx context.Context) (_ []storage.App, err error) {
	ctx, done := o.observe(ctx, "ListApps", apps, "", "")
	defer func() { done(err) }()
	return o.s.ListApps(ctx)
}

// CreateGroup implements storage.Store.
func (o *Store) CreateGroup(ctx context.Context, g storage.Group) (_ storage.Group, _ bool, err error) {
	ctx, done := o.observe(ctx, "CreateGroup", groups, g.AppID, g.ID)
	defer func() { done(err) }()
	return o.s.CreateGroup(ctx, g)
}

// GetGroup implements storage.Store.
func (o *Store) GetGroup(ctx context.Context, appID, groupID string) (_ storage.Group, err error) {
	ctx, done := o.observe(ctx, "GetGroup", groups, appID, groupID)
	defer func() { done(err) }()
	return o.s.GetGroup(ctx, appID, groupID)
}

// PutGroup implements storage.Store.
func (o *Store) PutGroup(ctx context.Context, g storage.Group) (_ int64, err error) {
	ctx, done := o.observe(ctx, "PutGroup", groups, g.AppID, g.ID)
	defer func() { done(err) }()
	return o.s.PutGroup(ctx, g)
}

// CountGroups implements storage.Store.
func (o *Store) CountGroups(ctx context.Context, appID string) (_ int, err error) {
	ctx, done := o.observe(ctx, "CountGroups", groups, appID, "")
	defer func() { done(err) }()
	return o.s.CountGroups(ctx, appID)
}

// ListGroups implements storage.Store.
func (o *Store) ListGroups(ctx context.Context, q storage.GroupQuery) (_ storage.GroupPage, err error) {
	ctx, done := o.observe(ctx, "ListGroups", groups, q.AppID, "")
	defer func() { done(err) }()
	return o.s.ListGroups(ctx, q)
}

// DeleteGroup implements storage.Store.
func (o *Store) DeleteGroup(ctx context.Context, appID, groupID string) (err error) {
	ctx, done := o.observe(ctx, "DeleteGroup", groups, appID, groupID)
	defer func() { done(err) }()
	return o.s.DeleteGroup(ctx, appID, groupID)
}

// AppendMessage implements storage.Store.
func (o *Store) AppendMessage(ctx context.Context, m storage.Message) (err error) {
	ctx, done := o.observe(ctx, "AppendMessage", messages, m.AppID, m.GroupID)
	defer func() { done(err) }()
	return o.s.AppendMessage(ctx, m)
}

// LastSeq implements storage.Store.
func (o *Store) LastSeq(ctx context.Context, appID, groupID string) (_ int64, err error) {
	ctx, done := o.observe(ctx, "LastSeq", messages, appID, groupID)
	defer func() { done(err) }()
	return o.s.LastSeq(ctx, appID, groupID)
}

// ListMessages implements storage.Store.
func (o *Store) ListMessages(ctx context.Context, q storage.MessageQuery) (_ storage.MessagePage, err error) {
	ctx, done := o.observe(ctx, "ListMessages", messages, q.AppID, q.GroupID)
	defer func() { done(err) }()
	return o.s.ListMessages(ctx, q)
}

// GetMessage implements storage.Store.
func (o *Store) GetMessage(ctx context.Context, appID, groupID, messageID string) (_ storage.Message, err error) {
	ctx, done := o.observe(ctx, "GetMessage", messages, appID, groupID)
	defer func() { done(err) }()
	return o.s.GetMessage(ctx, appID, groupID, messageID)
}

// DeleteMessage implements storage.Store.
func (o *Store) DeleteMessage(ctx context.Context, appID, groupID, messageID string, deleteSeq int64) (_ storage.Message, err error) {
	ctx, done := o.observe(ctx, "DeleteMessage", messages, appID, groupID)
	defer func() { done(err) }()
	return o.s.DeleteMessage(ctx, appID, groupID, messageID, deleteSeq)
}

// ListDeletions implements storage.Store.
func (o *Store) ListDeletions(ctx context.Context, appID, groupID string, afterSeq int64, limit int) (_ []storage.Deletion, err error) {
	ctx, done := o.observe(ctx, "ListDeletions", deletions, appID, groupID)
	defer func() { done(err) }()
	return o.s.ListDeletions(ctx, appID, groupID, afterSeq, limit)
}

// SaveMembers implements storage.Store.
func (o *Store) SaveMembers(ctx context.Context, appID, groupID string, upserts []storage.Member, removes []string) (err error) {
	ctx, done := o.observe(ctx, "SaveMembers", members, appID, groupID)
	defer func() { done(err) }()
	return o.s.SaveMembers(ctx, appID, groupID, upserts, removes)
}

// ListMembers implements storage.Store.
func (o *Store) ListMembers(ctx context.Context, appID, groupID string) (_ []storage.Member, err error) {
	ctx, done := o.observe(ctx, "ListMembers", members, appID, groupID)
	defer func() { done(err) }()
	return o.s.ListMembers(ctx, appID, groupID)
}

// Close closes the wrapped store.
func (o *Store) Close() error { return o.s.Close() }

// System names the wrapped store's database (storage.System).
func (o *Store) System() string { return storage.System(o.s) }
