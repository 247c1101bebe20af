package pebble

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/liveim/liveim/storage"
)

// record is the stored form of a message: the message plus its deletion
// mark. Embedding keeps the JSON flat.
type record struct {
	storage.Message
	Deleted bool `json:"deleted,omitempty"`
}

// AppendMessage stores m under (app, group, seqnum). Appending a seqnum that
// is already stored replaces it, unless that message was deleted: a deleted
// message stays deleted. m.Seq must be positive.
func (s *Store) AppendMessage(ctx context.Context, m storage.Message) error {
	if m.Seq <= 0 {
		return fmt.Errorf("storage/pebble: append message %s/%s: seqnum %d is not positive", m.AppID, m.GroupID, m.Seq)
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	mu := s.groupLock(m.AppID, m.GroupID)
	mu.Lock()
	b, err := s.appendLocked(m)
	mu.Unlock()
	if err == nil && b != nil {
		// The write is in the WAL, in order with the group's others; its
		// sync is awaited without the group's lock, so the appends of a
		// busy group share one fsync as different groups' do
		// (BenchmarkAppendOneGroupParallel).
		err = b.SyncWait()
		_ = b.Close()
	}
	if err != nil {
		return fmt.Errorf("storage/pebble: append message %s/%s/%d: %w", m.AppID, m.GroupID, m.Seq, err)
	}
	return nil
}

// appendLocked writes m under its group's lock. When the store syncs, it
// returns the batch applied to the WAL, whose sync the caller awaits
// (SyncWait) and which it closes; a nil batch needs neither.
func (s *Store) appendLocked(m storage.Message) (*pebbledb.Batch, error) {
	key := msgKey(m.AppID, m.GroupID, m.Seq)
	top, err := s.topSeqOf(m.AppID, m.GroupID)
	if err != nil {
		return nil, err
	}
	var old record
	found := false
	if m.Seq <= top { // a retry, or a seqnum written again: look at what is there
		if found, err = s.getJSON(key, &old); err != nil {
			return nil, err
		}
	}
	if found && old.Deleted {
		return nil, nil
	}
	val, err := json.Marshal(record{Message: m})
	if err != nil {
		return nil, err
	}
	staleID := "" // the index entry of what the seqnum held before
	if found && old.ID != m.ID {
		staleID = old.ID
	}
	b := s.db.NewBatch()
	if err := fillAppend(b, m, key, val, staleID); err != nil {
		_ = b.Close()
		return nil, err
	}
	if s.write.Sync {
		err = s.db.ApplyNoSyncWait(b, s.write)
	} else {
		err = b.Commit(s.write)
	}
	if err != nil || !s.write.Sync {
		_ = b.Close()
		b = nil
	}
	if err != nil {
		return nil, err
	}
	if m.Seq > top {
		s.setTopSeq(m.AppID, m.GroupID, m.Seq)
	}
	return b, nil
}

// fillAppend puts m's writes in b: the message under key, its ID's index
// entry, and, unless staleID is empty, the removal of staleID's entry.
func fillAppend(b *pebbledb.Batch, m storage.Message, key, val []byte, staleID string) error {
	if staleID != "" {
		if err := b.Delete(idxKey(m.AppID, m.GroupID, staleID), nil); err != nil {
			return err
		}
	}
	if err := b.Set(key, val, nil); err != nil {
		return err
	}
	seq := binary.BigEndian.AppendUint64(nil, uint64(m.Seq))
	return b.Set(idxKey(m.AppID, m.GroupID, m.ID), seq, nil)
}

// LastSeq returns the highest seqnum stored for the group, deleted messages
// included, or 0 if none.
func (s *Store) LastSeq(ctx context.Context, appID, groupID string) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	return s.lastSeq(appID, groupID)
}

func (s *Store) lastSeq(appID, groupID string) (int64, error) {
	prefix := messagesOf(appID, groupID)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("storage/pebble: last seq %s/%s: %w", appID, groupID, err)
	}
	var seq int64
	if it.Last() {
		seq = seqOf(it.Key())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("storage/pebble: last seq %s/%s: %w", appID, groupID, err)
	}
	return seq, nil
}

// ListMessages returns a page of the group's undeleted messages matching q.
// The page token is the decimal seqnum of the last message returned.
func (s *Store) ListMessages(ctx context.Context, q storage.MessageQuery) (storage.MessagePage, error) {
	if q.Limit <= 0 {
		return storage.MessagePage{}, fmt.Errorf("storage/pebble: list messages: limit %d is not positive: %w", q.Limit, storage.ErrInvalidQuery)
	}
	if q.BeforeSeq < 0 {
		return storage.MessagePage{}, fmt.Errorf("storage/pebble: list messages: before seq %d is negative: %w", q.BeforeSeq, storage.ErrInvalidQuery)
	}
	// Scan the seqnum range [lo, hi); hi == 0 means unbounded.
	lo, hi := int64(1), q.BeforeSeq
	if q.PageToken != "" {
		last, err := strconv.ParseInt(q.PageToken, 10, 64)
		if err != nil || last < 1 {
			return storage.MessagePage{}, fmt.Errorf("storage/pebble: list messages: bad page token %q: %w", q.PageToken, storage.ErrInvalidQuery)
		}
		switch {
		case q.Desc && (hi == 0 || last < hi):
			hi = last
		case !q.Desc && last == math.MaxInt64:
			return storage.MessagePage{}, nil
		case !q.Desc:
			lo = last + 1
		}
	}
	if hi != 0 && hi <= lo {
		return storage.MessagePage{}, nil
	}
	if err := s.begin(ctx); err != nil {
		return storage.MessagePage{}, err
	}
	defer s.end()
	cutoff, err := s.retentionCutoff(q.AppID)
	if err != nil {
		return storage.MessagePage{}, fmt.Errorf("storage/pebble: list messages: %w", err)
	}
	q.FromMs = max(q.FromMs, cutoff)
	page, err := s.scan(ctx, q, lo, hi)
	if err != nil {
		return storage.MessagePage{}, fmt.Errorf("storage/pebble: list messages %s/%s: %w", q.AppID, q.GroupID, err)
	}
	return page, nil
}

// scan walks the seqnum range [lo, hi) (hi == 0: to the end) in q's order
// and collects up to q.Limit matching messages, looking one match further
// to decide whether there is a next page.
func (s *Store) scan(ctx context.Context, q storage.MessageQuery, lo, hi int64) (page storage.MessagePage, err error) {
	opts := &pebbledb.IterOptions{LowerBound: msgKey(q.AppID, q.GroupID, lo)}
	if hi != 0 {
		opts.UpperBound = msgKey(q.AppID, q.GroupID, hi)
	} else {
		opts.UpperBound = prefixEnd(messagesOf(q.AppID, q.GroupID))
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return page, err
	}
	defer func() { err = errors.Join(err, it.Error(), it.Close()) }()
	first, next := it.First, it.Next
	if q.Desc {
		first, next = it.Last, it.Prev
	}
	page.Messages = make([]storage.Message, 0, min(q.Limit, 64))
	n := 0
	for ok := first(); ok; ok = next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return page, err
			}
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return page, err
		}
		var rec record
		if err := json.Unmarshal(val, &rec); err != nil {
			return page, fmt.Errorf("decode %q: %w", it.Key(), err)
		}
		if !matches(&rec, &q) {
			continue
		}
		if len(page.Messages) == q.Limit {
			page.NextPageToken = strconv.FormatInt(page.Messages[q.Limit-1].Seq, 10)
			break
		}
		page.Messages = append(page.Messages, rec.Message)
	}
	return page, nil
}

// matches reports whether r is live and passes q's type and time filters.
func matches(r *record, q *storage.MessageQuery) bool {
	switch {
	case r.Deleted:
		return false
	case q.Type != 0 && r.Type != q.Type:
		return false
	case q.FromMs != 0 && r.TimestampMs < q.FromMs:
		return false
	case q.ToMs != 0 && r.TimestampMs > q.ToMs:
		return false
	}
	return true
}

// DeleteMessage marks the message deleted and returns it, or returns
// storage.ErrNotFound if it does not exist or is already deleted.
func (s *Store) DeleteMessage(ctx context.Context, appID, groupID, messageID string, deleteSeq int64) (storage.Message, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Message{}, err
	}
	defer s.end()
	mu := s.groupLock(appID, groupID)
	mu.Lock()
	defer mu.Unlock()
	msg, err := s.deleteLocked(appID, groupID, messageID, deleteSeq)
	if err != nil {
		return storage.Message{}, fmt.Errorf("storage/pebble: delete message %s/%s/%s: %w", appID, groupID, messageID, err)
	}
	return msg, nil
}

func (s *Store) deleteLocked(appID, groupID, messageID string, deleteSeq int64) (storage.Message, error) {
	key, rec, err := s.lookup(appID, groupID, messageID)
	if err != nil {
		return storage.Message{}, err
	}
	rec.Deleted = true
	val, err := json.Marshal(rec)
	if err != nil {
		return storage.Message{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(key, val, nil)
	del, err := json.Marshal(storage.Deletion{Seq: deleteSeq, MessageSeq: rec.Seq, MessageID: messageID})
	if err != nil {
		return storage.Message{}, err
	}
	_ = b.Set(delKey(appID, groupID, deleteSeq), del, nil)
	if err := b.Commit(s.write); err != nil {
		return storage.Message{}, err
	}
	return rec.Message, nil
}

// ListDeletions returns the group's deletions after the afterSeq-th, from
// its d/ records.
func (s *Store) ListDeletions(ctx context.Context, appID, groupID string, afterSeq int64, limit int) ([]storage.Deletion, error) {
	if limit < 1 || afterSeq < 0 {
		return nil, fmt.Errorf("storage/pebble: list deletions: limit %d, after %d: %w", limit, afterSeq, storage.ErrInvalidQuery)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	prefix := deletionsOf(appID, groupID)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: delKey(appID, groupID, afterSeq+1), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("storage/pebble: list deletions: %w", err)
	}
	var out []storage.Deletion
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		var d storage.Deletion
		if err := json.Unmarshal(it.Value(), &d); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("storage/pebble: list deletions: decode %q: %w", it.Key(), err)
		}
		out = append(out, d)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("storage/pebble: list deletions: %w", err)
	}
	return out, nil
}

// GetMessage returns the message with the given ID, or storage.ErrNotFound
// if it does not exist or was deleted.
func (s *Store) GetMessage(ctx context.Context, appID, groupID, messageID string) (storage.Message, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Message{}, err
	}
	defer s.end()
	_, rec, err := s.lookup(appID, groupID, messageID)
	if err != nil {
		return storage.Message{}, fmt.Errorf("storage/pebble: get message %s/%s/%s: %w", appID, groupID, messageID, err)
	}
	return rec.Message, nil
}

// lookup finds a live message by ID through the i/ index and returns its m/
// key and record, or storage.ErrNotFound. It needs no lock: if a concurrent
// append replaces the record between the two reads, the ID check turns the
// stale index entry into ErrNotFound, which is the state after that append.
func (s *Store) lookup(appID, groupID, messageID string) ([]byte, record, error) {
	val, closer, err := s.db.Get(idxKey(appID, groupID, messageID))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, record{}, storage.ErrNotFound
	}
	if err != nil {
		return nil, record{}, err
	}
	if len(val) != 8 {
		err := fmt.Errorf("corrupt index value %x", val)
		closer.Close()
		return nil, record{}, err
	}
	seq := int64(binary.BigEndian.Uint64(val))
	closer.Close()

	key := msgKey(appID, groupID, seq)
	var rec record
	found, err := s.getJSON(key, &rec)
	if err != nil {
		return nil, record{}, err
	}
	if !found || rec.Deleted || rec.ID != messageID {
		return nil, record{}, storage.ErrNotFound
	}
	cutoff, err := s.retentionCutoff(appID)
	if err != nil {
		return nil, record{}, err
	}
	if rec.TimestampMs < cutoff {
		return nil, record{}, storage.ErrNotFound // past the app's retention
	}
	return key, rec, nil
}

// retentionCutoff returns the oldest timestamp (ms) the app's retention
// keeps, 0 when it keeps everything.
func (s *Store) retentionCutoff(appID string) (int64, error) {
	var app storage.App
	found, err := s.getJSON(appKey(appID), &app)
	if err != nil || !found || app.RetentionDays <= 0 {
		return 0, err
	}
	return time.Now().Add(-time.Duration(app.RetentionDays) * 24 * time.Hour).UnixMilli(), nil
}
