package scylla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/storage"
)

// ListApps returns every app, by ID (a scan of apps: operators have few).
func (s *Store) ListApps(ctx context.Context) ([]storage.App, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	it := s.query(ctx, `SELECT data FROM apps`).Iter()
	var out []storage.App
	var data string
	for it.Scan(&data) {
		var app storage.App
		if err := json.Unmarshal([]byte(data), &app); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("scylla: list apps: %w", err)
		}
		out = append(out, app)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("scylla: list apps: %w", err)
	}
	sortApps(out)
	return out, nil
}

// deleteParallel is how many message ID deletes of a group's delete are
// in flight at once.
const deleteParallel = 64

// DeleteGroup removes the group and everything of it: the messages of
// every bucket and their ID rows, buckets, deletions, members, the group
// row and its listing.
func (s *Store) DeleteGroup(ctx context.Context, appID, groupID string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	g, err := s.getGroup(ctx, appID, groupID)
	if err != nil {
		return err
	}
	// Started before the group leaves app_groups, which a first count
	// reads.
	if err := s.startCount(ctx, appID); err != nil {
		return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
	}
	buckets := s.query(ctx, `SELECT bucket FROM message_buckets WHERE app_id = ? AND group_id = ?`, appID, groupID).Iter()
	var bucket int64
	var all []int64
	for buckets.Scan(&bucket) {
		all = append(all, bucket)
	}
	if err := buckets.Close(); err != nil {
		return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
	}
	for _, b := range all {
		// Each message ID is a partition of its own: its deletes go out
		// deleteParallel at a time, since the group's router worker waits
		// for them (one after another, 100,000 messages took minutes).
		ids := s.query(ctx, `SELECT message_id FROM messages WHERE app_id = ? AND group_id = ? AND bucket = ?`, appID, groupID, b).Iter()
		var dels errgroup.Group
		dels.SetLimit(deleteParallel)
		var id string
		for ids.Scan(&id) {
			id := id // Scan writes the next one into id
			dels.Go(func() error {
				return s.query(ctx, `DELETE FROM message_ids WHERE app_id = ? AND group_id = ? AND message_id = ?`, appID, groupID, id).Exec()
			})
		}
		err := errors.Join(ids.Close(), dels.Wait())
		if err != nil {
			return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
		}
		if err := s.query(ctx, `DELETE FROM messages WHERE app_id = ? AND group_id = ? AND bucket = ?`, appID, groupID, b).Exec(); err != nil {
			return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
		}
	}
	if err := s.deleteMembers(ctx, appID, groupID); err != nil {
		return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
	}
	for _, stmt := range []string{
		`DELETE FROM message_buckets WHERE app_id = ? AND group_id = ?`,
		`DELETE FROM message_deletions WHERE app_id = ? AND group_id = ?`,
		`DELETE FROM groups WHERE app_id = ? AND group_id = ?`,
	} {
		if err := s.query(ctx, stmt, appID, groupID).Exec(); err != nil {
			return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
		}
	}
	if err := s.unlistGroup(ctx, appID, groupID); err != nil {
		return fmt.Errorf("scylla: delete group %s/%s: %w", appID, groupID, err)
	}
	s.cacheMu.Lock()
	delete(s.buckets, appID+"/"+groupID)
	s.cacheMu.Unlock()
	s.forgetGroup(appID, groupID)
	if !g.Closed {
		s.countOpen(ctx, appID, -1)
	}
	return nil
}

func sortApps(apps []storage.App) {
	slices.SortFunc(apps, func(a, b storage.App) int { return strings.Compare(a.ID, b.ID) })
}
