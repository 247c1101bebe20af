package pebble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/liveim/liveim/storage"
)

// ListApps returns every app, by ID.
func (s *Store) ListApps(ctx context.Context) ([]storage.App, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	prefix := []byte(appPrefix)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("storage/pebble: list apps: %w", err)
	}
	var out []storage.App
	for ok := it.First(); ok; ok = it.Next() {
		var app storage.App
		if err := json.Unmarshal(it.Value(), &app); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("storage/pebble: list apps: decode %q: %w", it.Key(), err)
		}
		out = append(out, app)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("storage/pebble: list apps: %w", err)
	}
	return out, nil
}

// ListGroups returns a page of an app's groups, by ID. The page token is
// the ID of the last group returned.
func (s *Store) ListGroups(ctx context.Context, q storage.GroupQuery) (storage.GroupPage, error) {
	if q.Limit < 1 {
		return storage.GroupPage{}, fmt.Errorf("storage/pebble: list groups: limit %d: %w", q.Limit, storage.ErrInvalidQuery)
	}
	if err := s.begin(ctx); err != nil {
		return storage.GroupPage{}, err
	}
	defer s.end()
	prefix := groupsOf(q.AppID)
	lower := prefix
	if q.PageToken != "" {
		lower = append(groupKey(q.AppID, q.PageToken), 0) // just after it
	}
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return storage.GroupPage{}, fmt.Errorf("storage/pebble: list groups: %w", err)
	}
	var page storage.GroupPage
	for ok := it.First(); ok; ok = it.Next() {
		var g storage.Group
		if err := json.Unmarshal(it.Value(), &g); err != nil {
			_ = it.Close()
			return storage.GroupPage{}, fmt.Errorf("storage/pebble: list groups: decode %q: %w", it.Key(), err)
		}
		if (q.Status == storage.OpenGroups && g.Closed) || (q.Status == storage.ClosedGroups && !g.Closed) {
			continue
		}
		if len(page.Groups) == q.Limit {
			page.NextPageToken = page.Groups[q.Limit-1].ID
			break
		}
		page.Groups = append(page.Groups, g)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return storage.GroupPage{}, fmt.Errorf("storage/pebble: list groups: %w", err)
	}
	return page, nil
}

// DeleteGroup removes the group, its open mark, its members, messages,
// message index and deletions in one batch.
func (s *Store) DeleteGroup(ctx context.Context, appID, groupID string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	gmu := s.recordLock(appID, groupID)
	gmu.Lock()
	defer gmu.Unlock()
	mu := s.groupLock(appID, groupID)
	mu.Lock()
	defer mu.Unlock()
	if _, closer, err := s.db.Get(groupKey(appID, groupID)); errors.Is(err, pebbledb.ErrNotFound) {
		return fmt.Errorf("group %s/%s: %w", appID, groupID, storage.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("storage/pebble: delete group %s/%s: %w", appID, groupID, err)
	} else {
		_ = closer.Close()
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete(groupKey(appID, groupID), nil)
	_ = b.Delete(openKey(appID, groupID), nil)
	for _, prefix := range [][]byte{messagesOf(appID, groupID), idsOf(appID, groupID), deletionsOf(appID, groupID), membersOf(appID, groupID)} {
		_ = b.DeleteRange(prefix, prefixEnd(prefix), nil)
	}
	if err := b.Commit(s.write); err != nil {
		return fmt.Errorf("storage/pebble: delete group %s/%s: %w", appID, groupID, err)
	}
	return nil
}
