// Package ids checks the ID rules of SPEC section 1 and makes new IDs.
package ids

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/liveim/liveim/proto/liveimpb"
)

// MaxLen is the longest appId, userId or groupId, in bytes.
const MaxLen = 64

// Valid reports whether id is 1..64 characters of A-Z, a-z, 0-9 and '-'.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Check returns a 400 error naming field when id breaks the rules.
func Check(field, id string) error {
	if id == "" {
		return liveimpb.InvalidParam(field, "required")
	}
	if !Valid(id) {
		return liveimpb.InvalidParam(field, "at most %d of A-Z a-z 0-9 -", MaxLen)
	}
	return nil
}

// New returns a random 32-character hex ID, valid under the rules.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
