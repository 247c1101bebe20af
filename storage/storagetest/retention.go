package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/liveim/liveim/storage"
)

// testRetention: messages older than the app's retention are gone from
// every query, whatever a backend's physical expiry does later.
func testRetention(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if err := s.PutApp(ctx, storage.App{ID: "ret", Key: "k", RetentionDays: 30}); err != nil {
		t.Fatalf("PutApp: %v", err)
	}
	now := time.Now()
	old := msg("ret", "g", 1)
	old.TimestampMs = now.Add(-31 * 24 * time.Hour).UnixMilli()
	recent := msg("ret", "g", 2)
	recent.TimestampMs = now.Add(-29 * 24 * time.Hour).UnixMilli()
	fresh := msg("ret", "g", 3)
	fresh.TimestampMs = now.UnixMilli()
	appendMsgs(t, s, old, recent, fresh)

	for _, desc := range []bool{false, true} {
		got := listAll(t, s, storage.MessageQuery{AppID: "ret", GroupID: "g", Desc: desc, Limit: 1})
		want := []int64{2, 3}
		if desc {
			want = []int64{3, 2}
		}
		wantSeqs(t, "list with retention", got, want)
	}
	if _, err := s.GetMessage(ctx, "ret", "g", old.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetMessage past retention: %v, want ErrNotFound", err)
	}
	if _, err := s.GetMessage(ctx, "ret", "g", recent.ID); err != nil {
		t.Fatalf("GetMessage within retention: %v", err)
	}
	// An app that keeps history forever keeps the old message.
	forever := msg("forever", "g", 1)
	forever.TimestampMs = old.TimestampMs
	appendMsgs(t, s, forever)
	wantSeqs(t, "list without retention", listAll(t, s, storage.MessageQuery{AppID: "forever", GroupID: "g", Limit: 10}), []int64{1})
}
