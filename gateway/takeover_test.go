package gateway

import (
	"testing"
	"time"
)

// TestTakeoverOrder: a takeover notice ends a session only when it is a
// later login's: it came after the session's own notice, or, should the
// own notice never come (lost in a NATS reconnect), ownNoticeWait after
// the session's check; on a multi-device app only on the same device. A
// login still waiting for its check records the later logins' notices.
func TestTakeoverOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &session{id: "mine", checkedAt: t0}
	if s.takenOverBy("earlier", "", t0.Add(time.Second)) {
		t.Fatal("a notice before the session's own ended it")
	}
	if !s.takenOverBy("stray", "", t0.Add(ownNoticeWait+time.Second)) {
		t.Fatal("with its own notice lost, a notice ownNoticeWait later did not end it")
	}
	if s.takenOverBy("mine", "", t0) || !s.ownNotice.Load() {
		t.Fatal("the session's own notice ended it, or was not recorded")
	}
	if !s.takenOverBy("later", "", t0.Add(time.Second)) {
		t.Fatal("a later login's notice did not end it")
	}
	m := &session{id: "phone", deviceID: "phone-1", multiDevice: true, checkedAt: t0}
	m.ownNotice.Store(true)
	if m.takenOverBy("tablet", "tablet-1", t0) || !m.takenOverBy("phone2", "phone-1", t0) {
		t.Fatal("multi-device: another device's login ended it, or the same device's did not")
	}

	waiting := &session{id: "w"}
	waiting.noticed("before", "")
	if waiting.supersededWhileChecked() {
		t.Fatal("a login was ended by a notice that came before its own")
	}
	waiting.noticed("w", "")
	waiting.noticed("after", "")
	if !waiting.supersededWhileChecked() {
		t.Fatal("a login that heard a later login's notice while it waited stays")
	}
}
