// Package pebble implements storage.Store on the Pebble key-value engine
// (github.com/cockroachdb/pebble/v2).
//
// It owns one Pebble database directory holding all of liveim's persistent
// state: apps, groups, group members and group message history. Nothing else may open the
// directory while a Store has it open.
//
// # Usage
//
//	st, err := pebble.Open("/var/lib/liveim/db", pebble.Options{})
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	err = st.PutApp(ctx, storage.App{ID: "app-1", Key: "secret"})
//
// # Key layout
//
// IDs contain only [A-Za-z0-9-], so '/' is a safe separator. Values are the
// JSON encoding of the storage structs.
//
//	a/<appID>                          -> storage.App
//	g/<appID>/<groupID>                -> storage.Group
//	m/<appID>/<groupID>/<seq>          -> storage.Message + "deleted" flag
//	i/<appID>/<groupID>/<messageID>    -> seq
//	u/<appID>/<groupID>/<userID>       -> storage.Member
//	d/<appID>/<groupID>/<deleteSeq>    -> storage.Deletion
//	o/<appID>/<groupID>                -> empty: the group is open (CountGroups)
//	meta/id                            -> the database's identity (Store.ID)
//
// <seq> is the seqnum as 8-byte big-endian, so keys sort by seqnum and a
// group's messages are one contiguous key range. Seqnums must be positive.
//
// A deleted message keeps its m/ record with "deleted": true set (a
// tombstone). Queries skip it, GetMessage and DeleteMessage report it as
// storage.ErrNotFound, LastSeq still counts it, and appending the same seqnum
// again leaves it deleted. GetMessage and DeleteMessage find a message by ID
// through its i/ entry and also check that the m/ record still carries that
// ID.
//
// A group's members are one u/ record per user ID, so ListMembers is a
// prefix scan and SaveMembers writes all of its upserts and removes in one
// atomic batch. Member records are independent of the g/ record: creating or
// replacing a group does not touch them.
//
// # Group versions
//
// A g/ record carries the group's Version (JSON "version"). CreateGroup
// stores a new group with Version 1, ignoring the Version it is given.
// PutGroup is compare-and-set: it reads the g/ record, returns
// storage.ErrNotFound if there is none, storage.ErrConflict (writing
// nothing) if the stored Version differs from the one passed in, and
// otherwise writes the group with Version+1 and returns that version.
// A record written before versions existed has no "version" and reads as
// Version 0, so the first PutGroup of it, passing 0, stores Version 1.
//
// # Paging
//
// A ListMessages page token is the decimal seqnum of the last message
// returned. The next page continues strictly after (ascending) or before
// (descending) that seqnum, so tokens stay valid while messages are appended.
//
// # Concurrency
//
// A Store is safe for concurrent use. A group has two striped locks: its
// record lock and its message lock. DeleteGroup takes the record lock, then
// the message lock (no code takes them the other way round). CreateGroup
// and PutGroup hold the group's record lock across their read and write,
// so concurrent CreateGroup calls for one group create it exactly once, and
// of concurrent PutGroup calls passing the same version exactly one
// succeeds; the others get storage.ErrConflict. Different groups' records
// write in parallel, so their fsyncs share Pebble's group commit. AppendMessage and DeleteMessage are serialized
// per group (by a striped lock) because both read a message record before
// writing it; different groups write in parallel. AppendMessage holds the
// lock until its write is in the WAL, not until the WAL is synced, so the
// appends of one busy group share an fsync too. SaveMembers takes no lock: it only
// writes, and its batch is applied atomically; of concurrent calls touching
// one user, the last to commit wins. Reads take no locks beyond a shared
// close guard. Close waits for in-flight calls; calls after Close return
// storage.ErrClosed.
package pebble
