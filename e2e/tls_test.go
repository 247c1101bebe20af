package e2e

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcert"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestTLSGateways: gateways that terminate TLS themselves (--tls-cert,
// on the portable path) serve the whole protocol over wss://: login,
// a join, a HIGH message across two gateways and a C2C message.
func TestTLSGateways(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	c := testcluster.Start(t, testcluster.Options{
		Gateways:  2,
		Gateway:   gateway.Config{TLSCertFile: certFile, TLSKeyFile: keyFile},
		ClientTLS: &tls.Config{RootCAs: pool},
	})
	for i := range 2 {
		if gw := c.Gateway(i); !strings.HasPrefix(gw.URL, "wss://") || gw.IO() != gateway.IOPortable {
			t.Fatalf("gateway %d: %s on %s, want wss:// on the portable path", i, gw.URL, gw.IO())
		}
	}
	alice := c.Login(t, 0, "alice", "admin")
	bob := c.Login(t, 1, "bob", "")
	createGroup(t, alice, "tls-room")
	join(t, alice, "tls-room")
	join(t, bob, "tls-room")
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
		GroupId: "tls-room", Type: chatType, Data: "over wss", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH,
	}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, bob, 1); got[0].Data != "over wss" || got[0].Seqnum == 0 {
		t.Fatalf("bob got %v", got[0])
	}
	if _, err := bob.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "alice", Type: chatType, Data: "psst"}); err != nil {
		t.Fatal(err)
	}
	m := waitEvent(t, alice, func(ev *liveimpb.Event) *liveimpb.Message { return ev.GetC2CMessage() })
	if m.Data != "psst" || m.Sender.GetUserId() != "bob" {
		t.Fatalf("alice got %v", m)
	}
}
