package scylla

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/liveim/liveim/storage"
)

const messageColumns = `seq, message_id, type, sender_id, sender_ext, data, ts, level, repeat_count, total_msgs, deleted`

// AppendMessage stores a group message in the partition of its time
// bucket, with the app's retention as TTL. Writing the same seqnum again
// rewrites the same row: a retry never duplicates.
func (s *Store) AppendMessage(ctx context.Context, m storage.Message) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if m.Seq <= 0 {
		return fmt.Errorf("scylla: append message %s/%s: seqnum %d is not positive", m.AppID, m.GroupID, m.Seq)
	}
	ttl, err := s.ttlOf(ctx, m.AppID)
	if err != nil {
		return err
	}
	bucket := s.bucketOf(m.TimestampMs)
	if err := s.noteBucket(ctx, m.AppID, m.GroupID, bucket, ttl); err != nil {
		return err
	}
	// The ID goes first. A process that dies between the two writes then
	// leaves an ID pointing at no message, which locate takes for none,
	// so the retry of the send stores the message once. The other order
	// left a message in the history that its retry could not find by ID,
	// and the retry stored it again (e2e/cluster.TestRandomFaults did).
	// The deleted mark is not written, so appending a deleted message
	// again leaves it deleted.
	err = s.query(ctx, `INSERT INTO message_ids (app_id, group_id, message_id, seq, bucket) VALUES (?, ?, ?, ?, ?) USING TTL ?`,
		m.AppID, m.GroupID, m.ID, m.Seq, bucket, ttl).Exec()
	if err == nil {
		if testHookBetweenAppendWrites != nil {
			testHookBetweenAppendWrites()
		}
		err = s.query(ctx, `INSERT INTO messages (app_id, group_id, bucket, seq, message_id, type, sender_id, sender_ext, data, ts, level, repeat_count, total_msgs)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`,
			m.AppID, m.GroupID, bucket, m.Seq, m.ID, m.Type, m.SenderID, m.SenderExt, m.Data, m.TimestampMs, m.Level, m.RepeatCount, m.TotalMsgs, ttl).Exec()
	}
	if err != nil {
		return fmt.Errorf("scylla: append message %s/%s/%d: %w", m.AppID, m.GroupID, m.Seq, err)
	}
	return nil
}

// testHookBetweenAppendWrites, when set, runs between AppendMessage's two
// writes (a test cuts the append short there).
var testHookBetweenAppendWrites func()

func (s *Store) bucketOf(tsMs int64) int64 {
	if tsMs < 0 {
		tsMs = 0
	}
	return tsMs / s.bucket
}

// noteBucket records that a group has messages in bucket, once per bucket
// and process (the write is an idempotent upsert anyway).
func (s *Store) noteBucket(ctx context.Context, appID, groupID string, bucket int64, ttl int) error {
	key := appID + "/" + groupID
	s.cacheMu.Lock()
	known := s.buckets[key] == bucket
	s.cacheMu.Unlock()
	if known {
		return nil
	}
	if ttl > 0 {
		ttl += int(s.cfg.BucketWidth.Seconds()) + 1 // outlive the bucket's last message
	}
	if err := s.query(ctx, `INSERT INTO message_buckets (app_id, group_id, bucket) VALUES (?, ?, ?) USING TTL ?`,
		appID, groupID, bucket, ttl).Exec(); err != nil {
		return fmt.Errorf("scylla: record bucket: %w", err)
	}
	s.cacheMu.Lock()
	s.buckets[key] = bucket
	s.cacheMu.Unlock()
	return nil
}

// LastSeq returns the highest seqnum stored for the group.
func (s *Store) LastSeq(ctx context.Context, appID, groupID string) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	it := s.query(ctx, `SELECT bucket FROM message_buckets WHERE app_id = ? AND group_id = ?`, appID, groupID).PageSize(16).Iter()
	var bucket int64
	for it.Scan(&bucket) {
		var seq int64
		err := s.query(ctx, `SELECT seq FROM messages WHERE app_id = ? AND group_id = ? AND bucket = ? LIMIT 1`, appID, groupID, bucket).Scan(&seq)
		if errors.Is(err, gocql.ErrNotFound) {
			continue // expired
		}
		_ = it.Close()
		if err != nil {
			return 0, fmt.Errorf("scylla: last seq %s/%s: %w", appID, groupID, err)
		}
		return seq, nil
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("scylla: last seq %s/%s: %w", appID, groupID, err)
	}
	return 0, nil
}

// pageToken is where a page ended: the last seqnum returned and its
// bucket. Tokens read "<seq>:<bucket>"; a bare "<seq>" is accepted too
// (clients may pass plain numbers), at the cost of scanning from the
// first bucket.
type pageToken struct {
	seq, bucket int64
	hasBucket   bool
}

func parseToken(tok string) (pageToken, bool) {
	if tok == "" {
		return pageToken{}, true
	}
	seqS, bucketS, hasBucket := strings.Cut(tok, ":")
	seq, err := strconv.ParseInt(seqS, 10, 64)
	if err != nil || seq < 1 {
		return pageToken{}, false
	}
	t := pageToken{seq: seq, hasBucket: hasBucket}
	if hasBucket {
		if t.bucket, err = strconv.ParseInt(bucketS, 10, 64); err != nil || t.bucket < 0 {
			return pageToken{}, false
		}
	}
	return t, true
}

// ListMessages walks the group's buckets that overlap the time range
// (from the bucket index, so empty buckets cost nothing) in the requested
// order and returns the first Limit matching messages.
func (s *Store) ListMessages(ctx context.Context, q storage.MessageQuery) (storage.MessagePage, error) {
	if err := s.begin(ctx); err != nil {
		return storage.MessagePage{}, err
	}
	defer s.end()
	tok, ok := parseToken(q.PageToken)
	switch {
	case q.Limit < 1:
		return storage.MessagePage{}, fmt.Errorf("scylla: limit %d: %w", q.Limit, storage.ErrInvalidQuery)
	case q.BeforeSeq < 0:
		return storage.MessagePage{}, fmt.Errorf("scylla: before seq %d: %w", q.BeforeSeq, storage.ErrInvalidQuery)
	case !ok:
		return storage.MessagePage{}, fmt.Errorf("scylla: page token %q: %w", q.PageToken, storage.ErrInvalidQuery)
	}
	// Messages past the app's retention are gone even before their TTL
	// removes them (the TTL counts from the write, not the timestamp).
	ttl, err := s.ttlOf(ctx, q.AppID)
	if err != nil {
		return storage.MessagePage{}, err
	}
	if ttl > 0 {
		q.FromMs = max(q.FromMs, time.Now().Add(-time.Duration(ttl)*time.Second).UnixMilli())
	}
	// Seqnum bounds, both exclusive.
	lo, hi := int64(0), int64(math.MaxInt64)
	if q.BeforeSeq > 0 {
		hi = q.BeforeSeq
	}
	if tok.seq > 0 {
		if q.Desc {
			hi = min(hi, tok.seq)
		} else {
			lo = tok.seq
		}
	}
	// Bucket bounds, inclusive.
	bLo, bHi := int64(0), int64(math.MaxInt64)
	if q.FromMs > 0 {
		bLo = s.bucketOf(q.FromMs)
	}
	if q.ToMs > 0 {
		bHi = s.bucketOf(q.ToMs)
	}
	if tok.hasBucket {
		if q.Desc {
			bHi = min(bHi, tok.bucket)
		} else {
			bLo = max(bLo, tok.bucket)
		}
	}
	order := "ASC"
	if q.Desc {
		order = "DESC"
	}
	buckets, err := s.bucketsBetween(ctx, q.AppID, q.GroupID, bLo, bHi, order)
	if err != nil {
		return storage.MessagePage{}, err
	}
	var page storage.MessagePage
	var lastBucket int64
	for _, b := range buckets {
		it := s.query(ctx, `SELECT `+messageColumns+` FROM messages WHERE app_id = ? AND group_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq `+order,
			q.AppID, q.GroupID, b, lo, hi).PageSize(min(1000, q.Limit+1)).Iter()
		for {
			m, deleted, ok := scanMessage(it)
			if !ok {
				break
			}
			if deleted || (q.Type != 0 && m.Type != q.Type) || (q.FromMs > 0 && m.TimestampMs < q.FromMs) || (q.ToMs > 0 && m.TimestampMs > q.ToMs) {
				continue
			}
			if len(page.Messages) == q.Limit {
				last := page.Messages[len(page.Messages)-1]
				page.NextPageToken = itoa(last.Seq) + ":" + itoa(lastBucket)
				_ = it.Close()
				return page, nil
			}
			m.AppID, m.GroupID = q.AppID, q.GroupID
			page.Messages = append(page.Messages, m)
			lastBucket = b
		}
		if err := it.Close(); err != nil {
			return storage.MessagePage{}, fmt.Errorf("scylla: list messages %s/%s: %w", q.AppID, q.GroupID, err)
		}
	}
	return page, nil
}

// bucketsBetween lists a group's non-empty buckets in [lo, hi].
func (s *Store) bucketsBetween(ctx context.Context, appID, groupID string, lo, hi int64, order string) ([]int64, error) {
	it := s.query(ctx, `SELECT bucket FROM message_buckets WHERE app_id = ? AND group_id = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket `+order,
		appID, groupID, lo, hi).PageSize(1000).Iter()
	var out []int64
	var b int64
	for it.Scan(&b) {
		out = append(out, b)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("scylla: list buckets %s/%s: %w", appID, groupID, err)
	}
	return out, nil
}

func scanMessage(it *gocql.Iter) (storage.Message, bool, bool) {
	var m storage.Message
	var deleted bool
	ok := it.Scan(&m.Seq, &m.ID, &m.Type, &m.SenderID, &m.SenderExt, &m.Data, &m.TimestampMs, &m.Level, &m.RepeatCount, &m.TotalMsgs, &deleted)
	return m, deleted, ok
}

// locate finds a message's row through message_ids; a deleted message,
// or an ID whose seqnum now holds another message, is ErrNotFound.
func (s *Store) locate(ctx context.Context, appID, groupID, messageID string) (storage.Message, int64, int, error) {
	var seq, bucket int64
	err := s.query(ctx, `SELECT seq, bucket FROM message_ids WHERE app_id = ? AND group_id = ? AND message_id = ?`, appID, groupID, messageID).Scan(&seq, &bucket)
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.Message{}, 0, 0, fmt.Errorf("message %s: %w", messageID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Message{}, 0, 0, fmt.Errorf("scylla: find message %s: %w", messageID, err)
	}
	it := s.query(ctx, `SELECT `+messageColumns+` FROM messages WHERE app_id = ? AND group_id = ? AND bucket = ? AND seq = ?`, appID, groupID, bucket, seq).Iter()
	m, deleted, ok := scanMessage(it)
	if err := it.Close(); err != nil {
		return storage.Message{}, 0, 0, fmt.Errorf("scylla: read message %s: %w", messageID, err)
	}
	if !ok || deleted || m.ID != messageID {
		return storage.Message{}, 0, 0, fmt.Errorf("message %s: %w", messageID, storage.ErrNotFound)
	}
	m.AppID, m.GroupID = appID, groupID
	ttl, err := s.ttlOf(ctx, appID)
	if err == nil && ttl > 0 && m.TimestampMs < time.Now().Add(-time.Duration(ttl)*time.Second).UnixMilli() {
		return storage.Message{}, 0, 0, fmt.Errorf("message %s past retention: %w", messageID, storage.ErrNotFound)
	}
	return m, bucket, ttl, err
}

// GetMessage returns a stored, not deleted message by ID.
func (s *Store) GetMessage(ctx context.Context, appID, groupID, messageID string) (storage.Message, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Message{}, err
	}
	defer s.end()
	m, _, _, err := s.locate(ctx, appID, groupID, messageID)
	return m, err
}

// DeleteMessage sets the message's deleted mark (no row delete, so no
// tombstones pile up in hot partitions) and returns the message.
func (s *Store) DeleteMessage(ctx context.Context, appID, groupID, messageID string, deleteSeq int64) (storage.Message, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Message{}, err
	}
	defer s.end()
	m, bucket, ttl, err := s.locate(ctx, appID, groupID, messageID)
	if err != nil {
		return storage.Message{}, err
	}
	if err := s.query(ctx, `UPDATE messages USING TTL ? SET deleted = true WHERE app_id = ? AND group_id = ? AND bucket = ? AND seq = ?`,
		ttl, appID, groupID, bucket, m.Seq).Exec(); err != nil {
		return storage.Message{}, fmt.Errorf("scylla: delete message %s: %w", messageID, err)
	}
	if err := s.query(ctx, `INSERT INTO message_deletions (app_id, group_id, delete_seq, seq, message_id) VALUES (?, ?, ?, ?, ?) USING TTL ?`,
		appID, groupID, deleteSeq, m.Seq, messageID, ttl).Exec(); err != nil {
		return storage.Message{}, fmt.Errorf("scylla: record deletion of %s: %w", messageID, err)
	}
	return m, nil
}

// ListDeletions returns the group's deletions after the afterSeq-th, from
// message_deletions (its rows expire with the messages).
func (s *Store) ListDeletions(ctx context.Context, appID, groupID string, afterSeq int64, limit int) ([]storage.Deletion, error) {
	if limit < 1 || afterSeq < 0 {
		return nil, fmt.Errorf("scylla: list deletions: limit %d, after %d: %w", limit, afterSeq, storage.ErrInvalidQuery)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	it := s.query(ctx, `SELECT delete_seq, seq, message_id FROM message_deletions WHERE app_id = ? AND group_id = ? AND delete_seq > ? LIMIT ?`,
		appID, groupID, afterSeq, limit).Iter()
	var out []storage.Deletion
	var d storage.Deletion
	for it.Scan(&d.Seq, &d.MessageSeq, &d.MessageID) {
		out = append(out, d)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("scylla: list deletions: %w", err)
	}
	return out, nil
}
