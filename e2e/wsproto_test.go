package e2e

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/internal/testcluster"
)

// serverClose writes frame on a fresh connection and returns the status
// of the close frame the gateway answers with.
func serverClose(t *testing.T, url string, frame ws.Frame) ws.StatusCode {
	t.Helper()
	c := dialRaw(t, url)
	if err := ws.WriteFrame(c.Conn, ws.MaskFrame(frame)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := ws.ReadFrame(c.r)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			if len(f.Payload) < 2 {
				return ws.StatusNoStatusRcvd
			}
			return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
		}
	}
}

// TestWebSocketProtocolErrors checks the close statuses RFC 6455 asks for:
// unknown opcodes and malformed close frames fail the connection with 1002
// (protocol error); a text frame is data the gateway does not take (1003);
// a proper close is echoed.
func TestWebSocketProtocolErrors(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	url := c.Gateway(0).URL
	closeBody := func(code uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, code), reason...)
	}
	tests := []struct {
		name  string
		frame ws.Frame
		want  ws.StatusCode
	}{
		{"reserved control opcode", ws.NewFrame(ws.OpCode(0xB), true, nil), ws.StatusProtocolError},
		{"reserved data opcode", ws.NewFrame(ws.OpCode(0x3), true, []byte("x")), ws.StatusProtocolError},
		{"close with a one-byte body", ws.NewFrame(ws.OpClose, true, []byte{0x03}), ws.StatusProtocolError},
		{"close code below 1000", ws.NewFrame(ws.OpClose, true, closeBody(999, "")), ws.StatusProtocolError},
		{"close code 1005 on the wire", ws.NewFrame(ws.OpClose, true, closeBody(1005, "")), ws.StatusProtocolError},
		{"close code 1015 on the wire", ws.NewFrame(ws.OpClose, true, closeBody(1015, "")), ws.StatusProtocolError},
		{"unassigned close code", ws.NewFrame(ws.OpClose, true, closeBody(2000, "")), ws.StatusProtocolError},
		{"close reason not UTF-8", ws.NewFrame(ws.OpClose, true, closeBody(1000, "\xff\xfe")), ws.StatusInvalidFramePayloadData},
		{"text frame", ws.NewFrame(ws.OpText, true, []byte("hi")), ws.StatusUnsupportedData},
		{"normal close", ws.NewFrame(ws.OpClose, true, closeBody(1000, "bye")), ws.StatusNormalClosure},
		{"application close code", ws.NewFrame(ws.OpClose, true, closeBody(4000, "")), ws.StatusNormalClosure},
		{"empty close", ws.NewFrame(ws.OpClose, true, nil), ws.StatusNormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverClose(t, url, tt.frame); got != tt.want {
				t.Fatalf("close status %d, want %d", got, tt.want)
			}
		})
	}
}
