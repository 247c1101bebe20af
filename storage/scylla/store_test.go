package scylla

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/storagetest"
)

// cqlHosts returns the CQL server the tests use, or skips: CI starts one
// with scripts/cql-test-server, which prints LIVEIM_CQL_HOSTS.
func cqlHosts(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("LIVEIM_CQL_HOSTS")
	if v == "" {
		t.Skip("LIVEIM_CQL_HOSTS is not set: start a CQL server with `eval $(scripts/cql-test-server start)` to run the ScyllaDB backend tests")
	}
	return strings.Split(v, ",")
}

// testConfig uses small buckets, so the suite's messages (10 ms apart)
// spread over many partitions and cross-bucket paging is exercised.
func testConfig(hosts []string, keyspace string) Config {
	return Config{Hosts: hosts, Keyspace: keyspace, BucketWidth: 50 * time.Millisecond, Consistency: "ONE", SerialConsistency: "SERIAL", Timeout: 20 * time.Second}
}

func randomKeyspace() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "liveim_test_" + hex.EncodeToString(b[:])
}

func openTest(t testing.TB, keyspace string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig(cqlHosts(t), keyspace)
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		if !strings.HasPrefix(keyspace, "liveim_test_p") { // persistence reopens it
			_ = DropKeyspace(context.Background(), cfg)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	hosts := cqlHosts(t)
	storagetest.Run(t, func(t testing.TB) storage.Store {
		_ = hosts
		return openTest(t, randomKeyspace())
	})
}

func TestPersistence(t *testing.T) {
	cqlHosts(t)
	storagetest.RunPersistence(t, func(t testing.TB, dir string) storage.Store {
		h := fnv.New64a()
		h.Write([]byte(dir))
		return openTest(t, "liveim_test_p"+hex.EncodeToString(h.Sum(nil)))
	})
}

func benchConfig(t testing.TB) Config {
	return Config{Hosts: cqlHosts(t), Keyspace: randomKeyspace(), Consistency: "ONE", SerialConsistency: "SERIAL", Timeout: 20 * time.Second}
}

func openBench(b *testing.B) *Store {
	cfg := benchConfig(b)
	s, err := Open(b.Context(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		_ = DropKeyspace(context.Background(), cfg)
	})
	return s
}

func BenchmarkAppendMessage(b *testing.B) { storagetest.BenchAppend(b, openBench(b)) }

func BenchmarkAppendMessageParallel(b *testing.B) {
	storagetest.BenchAppendParallel(b, openBench(b), 16)
}

func BenchmarkListMessagesDesc50(b *testing.B) {
	storagetest.BenchListDesc50(b, openBench(b), 10_000)
}

func BenchmarkDeleteGroup2000(b *testing.B) {
	storagetest.BenchDeleteGroup(b, openBench(b), 2000)
}

// TestDeleteGroupRemovesEveryMessageID: a group's delete removes the ID
// row of every message (each a partition of its own, deleted many at a
// time), over several buckets.
func TestDeleteGroupRemovesEveryMessageID(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := t.Context()
	if _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "app", ID: "g", Name: "g"}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for seq := int64(1); seq <= n; seq++ {
		m := storage.Message{AppID: "app", GroupID: "g", ID: fmt.Sprintf("m-%d", seq), Seq: seq, Type: 10001, Data: "x",
			TimestampMs: time.Now().UnixMilli() + seq} // over several 50 ms buckets
		if err := s.AppendMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteGroup(ctx, "app", "g"); err != nil {
		t.Fatal(err)
	}
	var left []string
	for seq := 1; seq <= n; seq++ {
		id := fmt.Sprintf("m-%d", seq)
		var got int64
		err := s.query(ctx, `SELECT seq FROM message_ids WHERE app_id = ? AND group_id = ? AND message_id = ?`, "app", "g", id).Scan(&got)
		if !errors.Is(err, gocql.ErrNotFound) {
			left = append(left, id)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d message ID rows left after the delete: %v", len(left), left[:min(len(left), 10)])
	}
}
