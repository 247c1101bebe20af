package scylla

import (
	"context"
	"fmt"

	"github.com/gocql/gocql"
)

// schema is applied at Open, idempotently. Every table a group touches is
// partitioned so no partition grows without bound:
//
//   - messages: one partition per (app, group, time bucket), rows ordered
//     by seqnum, newest first; TimeWindowCompactionStrategy with daily
//     windows, since history is written in time order and expires by TTL
//     (the app's retention), so whole SSTables drop at once;
//   - message_buckets: which buckets of a group hold messages, so long
//     time ranges skip empty buckets;
//   - message_ids: a partition per message ID, for delete and lookup;
//   - groups: a partition per group, written with lightweight
//     transactions (compare-and-set on version), so groups never contend
//     with each other; app_group_list lists an app's groups with their
//     closed flag, spread over 32 partitions by a hash of the group ID
//     (listing.go); app_groups is that list of liveim before, read once
//     per app to copy it; app_counters counts each app's open groups
//     (counts.go);
//   - group_members: a group's member set, one partition per (app,
//     group, epoch) with a row per present user; member_epochs names
//     the set's current epoch. Every leave deletes a row, so a busy
//     room's set is rewritten into a fresh epoch, and the old partition
//     dropped with one tombstone, before its deletions grow past what a
//     read may step over (members.go). members is the set of liveim
//     before epochs, read once per group to carry it over.
//
// Deleting a message sets a deleted mark on its row instead of deleting
// it: no tombstone storms in hot partitions, and the row expires with its
// TTL like the rest.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS apps (
		app_id text PRIMARY KEY,
		data text
	)`,
	`CREATE TABLE IF NOT EXISTS groups (
		app_id text,
		group_id text,
		data text,
		version bigint,
		PRIMARY KEY ((app_id, group_id))
	)`,
	`CREATE TABLE IF NOT EXISTS app_groups (
		app_id text,
		group_id text,
		closed boolean,
		PRIMARY KEY ((app_id), group_id)
	)`,
	`CREATE TABLE IF NOT EXISTS messages (
		app_id text,
		group_id text,
		bucket bigint,
		seq bigint,
		message_id text,
		type int,
		sender_id text,
		sender_ext text,
		data text,
		ts bigint,
		level int,
		repeat_count int,
		total_msgs bigint,
		deleted boolean,
		PRIMARY KEY ((app_id, group_id, bucket), seq)
	) WITH CLUSTERING ORDER BY (seq DESC)
	  AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}`,
	`CREATE TABLE IF NOT EXISTS message_buckets (
		app_id text,
		group_id text,
		bucket bigint,
		PRIMARY KEY ((app_id, group_id), bucket)
	) WITH CLUSTERING ORDER BY (bucket DESC)`,
	`CREATE TABLE IF NOT EXISTS message_ids (
		app_id text,
		group_id text,
		message_id text,
		seq bigint,
		bucket bigint,
		PRIMARY KEY ((app_id, group_id, message_id))
	)`,
	`CREATE TABLE IF NOT EXISTS message_deletions (
		app_id text,
		group_id text,
		delete_seq bigint,
		seq bigint,
		message_id text,
		PRIMARY KEY ((app_id, group_id), delete_seq)
	) WITH CLUSTERING ORDER BY (delete_seq ASC)`,
	`CREATE TABLE IF NOT EXISTS members (
		app_id text,
		group_id text,
		user_id text,
		data text,
		PRIMARY KEY ((app_id, group_id), user_id)
	)`,
	`CREATE TABLE IF NOT EXISTS app_group_list (
		app_id text,
		bucket int,
		group_id text,
		closed boolean,
		PRIMARY KEY ((app_id, bucket), group_id)
	)`,
	`CREATE TABLE IF NOT EXISTS app_list_starts (
		app_id text PRIMARY KEY,
		started_at timestamp,
		starter timeuuid,
		copied boolean
	)`,
	`CREATE TABLE IF NOT EXISTS app_counters (
		app_id text PRIMARY KEY,
		open_groups counter
	)`,
	`CREATE TABLE IF NOT EXISTS app_counter_starts (
		app_id text PRIMARY KEY,
		started_at timestamp,
		starter timeuuid
	)`,
	`CREATE TABLE IF NOT EXISTS member_epochs (
		app_id text,
		group_id text,
		epoch bigint,
		removed bigint,
		live bigint,
		PRIMARY KEY ((app_id, group_id))
	)`,
	`CREATE TABLE IF NOT EXISTS group_members (
		app_id text,
		group_id text,
		epoch bigint,
		user_id text,
		data text,
		PRIMARY KEY ((app_id, group_id, epoch), user_id)
	)`,
}

// applySchema creates the keyspace and tables unless they exist.
func applySchema(ctx context.Context, cluster *gocql.ClusterConfig, cfg Config) error {
	c := *cluster
	c.Keyspace = "system"
	s, err := c.CreateSession()
	if err != nil {
		return fmt.Errorf("scylla: connect: %w", err)
	}
	defer s.Close()
	// ScyllaDB 2025+ gives new keyspaces tablets, which do not support the
	// lightweight transactions the groups table relies on: ask for vnodes.
	// Cassandra knows no "tablets" option and refuses it: ask again
	// without.
	stmt := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", cfg.Keyspace, cfg.Replication)
	if err := s.Query(stmt + " AND tablets = {'enabled': false}").WithContext(ctx).Exec(); err != nil {
		if err := s.Query(stmt).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("scylla: create keyspace: %w", err)
		}
	}
	for _, t := range schema {
		if err := s.Query(qualify(t, cfg.Keyspace)).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("scylla: %s: %w", firstLine(t), err)
		}
	}
	return s.AwaitSchemaAgreement(ctx)
}

// qualify prefixes the table a CREATE TABLE statement names with ks.
func qualify(stmt, ks string) string {
	const p = "CREATE TABLE IF NOT EXISTS "
	return p + ks + "." + stmt[len(p):]
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '(' {
			return s[:i]
		}
	}
	return s
}

// DropKeyspace drops cfg's keyspace and everything in it. Tests use it to
// clean up the keyspaces they create.
func DropKeyspace(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	c, err := cfg.cluster()
	if err != nil {
		return err
	}
	c.Keyspace = "system"
	s, err := c.CreateSession()
	if err != nil {
		return fmt.Errorf("scylla: connect: %w", err)
	}
	defer s.Close()
	return s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).WithContext(ctx).Exec()
}
