package pebble

import "encoding/binary"

// Key prefixes; see the package doc for the layout.
const (
	appPrefix    = "a/"
	groupPrefix  = "g/"
	msgPrefix    = "m/"
	idxPrefix    = "i/"
	memberPrefix = "u/"
	delPrefix    = "d/"
	openPrefix   = "o/"
	// idKey holds the database's identity (Store.ID).
	idKey = "meta/id"
)

func appKey(appID string) []byte {
	return []byte(appPrefix + appID)
}

func groupKey(appID, groupID string) []byte {
	return []byte(groupPrefix + appID + "/" + groupID)
}

// openKey marks an open group of an app, for CountGroups.
func openKey(appID, groupID string) []byte {
	return []byte(openPrefix + appID + "/" + groupID)
}

// openGroupsOf is the prefix shared by the open-group marks of one app.
func openGroupsOf(appID string) []byte {
	return []byte(openPrefix + appID + "/")
}

// groupsOf is the prefix shared by all group keys of one app.
func groupsOf(appID string) []byte {
	return []byte(groupPrefix + appID + "/")
}

// messagesOf is the prefix shared by all message keys of one group.
func messagesOf(appID, groupID string) []byte {
	return []byte(msgPrefix + appID + "/" + groupID + "/")
}

func msgKey(appID, groupID string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(messagesOf(appID, groupID), uint64(seq))
}

func idxKey(appID, groupID, messageID string) []byte {
	return append(idsOf(appID, groupID), messageID...)
}

// idsOf is the prefix shared by the message index keys of one group.
func idsOf(appID, groupID string) []byte {
	return []byte(idxPrefix + appID + "/" + groupID + "/")
}

// deletionsOf is the prefix shared by all deletion keys of one group.
func deletionsOf(appID, groupID string) []byte {
	return []byte(delPrefix + appID + "/" + groupID + "/")
}

func delKey(appID, groupID string, deleteSeq int64) []byte {
	return binary.BigEndian.AppendUint64(deletionsOf(appID, groupID), uint64(deleteSeq))
}

// membersOf is the prefix shared by all member keys of one group.
func membersOf(appID, groupID string) []byte {
	return []byte(memberPrefix + appID + "/" + groupID + "/")
}

func memberKey(appID, groupID, userID string) []byte {
	return append(membersOf(appID, groupID), userID...)
}

// seqOf decodes the seqnum from the last 8 bytes of a message key.
func seqOf(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(key)-8:]))
}

// prefixEnd returns the smallest key greater than every key with prefix p.
// Prefixes here end in '/', so incrementing the last byte never overflows.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}
