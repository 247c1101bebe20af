package pebble_test

import (
	"fmt"
	"testing"

	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
	"github.com/liveim/liveim/storage/storagetest"
)

func open(t testing.TB, dir string, opts pebble.Options) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) storage.Store {
		return open(t, t.TempDir(), pebble.Options{NoSync: true})
	})
}

func TestConformanceSync(t *testing.T) {
	if testing.Short() {
		t.Skip("fsync on every write is slow")
	}
	storagetest.Run(t, func(t testing.TB) storage.Store {
		return open(t, t.TempDir(), pebble.Options{})
	})
}

func TestPersistence(t *testing.T) {
	storagetest.RunPersistence(t, func(t testing.TB, dir string) storage.Store {
		return open(t, dir, pebble.Options{CacheSize: 1 << 20})
	})
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts pebble.Options
	}{{"sync", pebble.Options{}}, {"nosync", pebble.Options{NoSync: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, b.TempDir(), bc.opts)
			m := storage.Message{
				AppID: "app", GroupID: "room", SenderID: "user-1", Type: 1,
				Data: "hello, this is a typical short chat message", TimestampMs: 1_700_000_000_000,
			}
			b.ReportAllocs()
			seq := int64(0)
			for b.Loop() {
				seq++
				m.Seq, m.ID = seq, fmt.Sprintf("msg-%d", seq)
				if err := s.AppendMessage(b.Context(), m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkListMessagesDesc50(b *testing.B) {
	s := open(b, b.TempDir(), pebble.Options{NoSync: true})
	const n = 10_000
	for seq := int64(1); seq <= n; seq++ {
		m := storage.Message{
			AppID: "app", GroupID: "room", ID: fmt.Sprintf("msg-%d", seq), Seq: seq, Type: 1,
			SenderID: "user-1", Data: "hello", TimestampMs: 1_700_000_000_000 + seq,
		}
		if err := s.AppendMessage(b.Context(), m); err != nil {
			b.Fatal(err)
		}
	}
	q := storage.MessageQuery{AppID: "app", GroupID: "room", Desc: true, Limit: 50}
	b.ReportAllocs()
	for b.Loop() {
		page, err := s.ListMessages(b.Context(), q)
		if err != nil || len(page.Messages) != 50 {
			b.Fatalf("ListMessages: %d messages, %v", len(page.Messages), err)
		}
	}
}
