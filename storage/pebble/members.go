package pebble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/liveim/liveim/storage"
)

// SaveMembers applies upserts and removes to the group's member records in
// one atomic batch: either every change is stored or none is. An upsert
// replaces the whole record of its user ID (sessions included); a remove
// deletes it, and removing an unknown user is not an error. Changes apply
// in order, upserts first, so a user ID that is both upserted and removed
// in one call ends up removed, and of repeated upserts the last wins. User
// IDs must not be empty. The group itself need not exist.
func (s *Store) SaveMembers(ctx context.Context, appID, groupID string, upserts []storage.Member, removes []string) error {
	for _, m := range upserts {
		if m.UserID == "" {
			return fmt.Errorf("storage/pebble: save members %s/%s: empty user ID", appID, groupID)
		}
	}
	for _, id := range removes {
		if id == "" {
			return fmt.Errorf("storage/pebble: save members %s/%s: empty user ID", appID, groupID)
		}
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if len(upserts) == 0 && len(removes) == 0 {
		return nil
	}
	if err := s.saveMembers(appID, groupID, upserts, removes); err != nil {
		return fmt.Errorf("storage/pebble: save members %s/%s: %w", appID, groupID, err)
	}
	return nil
}

func (s *Store) saveMembers(appID, groupID string, upserts []storage.Member, removes []string) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, m := range upserts {
		val, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := b.Set(memberKey(appID, groupID, m.UserID), val, nil); err != nil {
			return err
		}
	}
	for _, id := range removes {
		if err := b.Delete(memberKey(appID, groupID, id), nil); err != nil {
			return err
		}
	}
	return b.Commit(s.write)
}

// ListMembers returns every recorded member of the group, ordered by user
// ID (callers must not rely on the order), or an empty slice if none.
func (s *Store) ListMembers(ctx context.Context, appID, groupID string) ([]storage.Member, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	members, err := s.listMembers(ctx, appID, groupID)
	if err != nil {
		return nil, fmt.Errorf("storage/pebble: list members %s/%s: %w", appID, groupID, err)
	}
	return members, nil
}

func (s *Store) listMembers(ctx context.Context, appID, groupID string) (members []storage.Member, err error) {
	prefix := membersOf(appID, groupID)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, it.Error(), it.Close()) }()
	members = []storage.Member{}
	for ok := it.First(); ok; ok = it.Next() {
		if len(members)%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		var m storage.Member
		if err := json.Unmarshal(val, &m); err != nil {
			return nil, fmt.Errorf("decode %q: %w", it.Key(), err)
		}
		members = append(members, m)
	}
	return members, nil
}
