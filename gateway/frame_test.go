package gateway

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
)

// clientFrame builds a masked client frame the way gobwas/ws writes one.
func clientFrame(t testing.TB, op ws.OpCode, fin bool, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	if err := ws.WriteFrame(&buf, ws.MaskFrame(f)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseFrame(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 70000)
	tests := []struct {
		name    string
		frame   []byte
		max     int
		payload []byte
		op      ws.OpCode
		err     error
	}{
		{name: "small binary", frame: clientFrame(t, ws.OpBinary, true, []byte("hello")), max: 100, payload: []byte("hello"), op: ws.OpBinary},
		{name: "16-bit length", frame: clientFrame(t, ws.OpBinary, true, big[:300]), max: 1000, payload: big[:300], op: ws.OpBinary},
		{name: "64-bit length", frame: clientFrame(t, ws.OpBinary, true, big), max: 1 << 20, payload: big, op: ws.OpBinary},
		{name: "empty ping", frame: clientFrame(t, ws.OpPing, true, nil), max: 10, payload: []byte{}, op: ws.OpPing},
		{name: "too large", frame: clientFrame(t, ws.OpBinary, true, big[:300]), max: 299, err: errFrameTooLarge},
		{name: "unmasked", frame: []byte{0x82, 0x01, 'x'}, max: 10, err: errProtocol},
		{name: "rsv bit", frame: append([]byte{0xc2}, clientFrame(t, ws.OpBinary, true, []byte("x"))[1:]...), max: 10, err: errProtocol},
		{name: "fragmented control", frame: clientFrame(t, ws.OpPing, false, nil), max: 10, err: errProtocol},
		{name: "reserved opcode", frame: clientFrame(t, ws.OpCode(3), true, nil), max: 10, err: errProtocol},
		{name: "reserved control opcode", frame: clientFrame(t, ws.OpCode(0xB), true, nil), max: 10, err: errProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, payload, n, err := parseFrame(append([]byte(nil), tt.frame...), tt.max)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if n != len(tt.frame) || h.op != tt.op || !bytes.Equal(payload, tt.payload) {
				t.Fatalf("parse = op %v, %d bytes, payload %d bytes; want op %v, %d, %d", h.op, n, len(payload), tt.op, len(tt.frame), len(tt.payload))
			}
			// Every proper prefix is incomplete, never an error.
			for cut := 0; cut < len(tt.frame); cut += 1 + len(tt.frame)/50 {
				if _, _, n, err := parseFrame(append([]byte(nil), tt.frame[:cut]...), tt.max); n != 0 || err != nil {
					t.Fatalf("prefix %d: n=%d err=%v, want incomplete", cut, n, err)
				}
			}
		})
	}
}

func TestAppendFrameRoundTrip(t *testing.T) {
	for _, size := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{7}, size)
		b := appendFrame(nil, ws.OpBinary, payload)
		if len(b) != headerLen(size)+size {
			t.Fatalf("size %d: frame %d bytes, want %d", size, len(b), headerLen(size)+size)
		}
		f, err := ws.ReadFrame(bytes.NewReader(b))
		if err != nil || !f.Header.Fin || f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("size %d: gobwas reads %v, %v", size, f.Header, err)
		}
	}
}

// FuzzParseFrame feeds arbitrary bytes to the frame parser: it must never
// panic, never claim more bytes than it was given, and never return a
// payload over the limit.
func FuzzParseFrame(f *testing.F) {
	f.Add(clientFrame(f, ws.OpBinary, true, []byte("hello")))
	f.Add(clientFrame(f, ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 1024
		h, payload, n, err := parseFrame(b, max)
		if err != nil {
			return
		}
		if n > len(b) || len(payload) > max || (n > 0 && h.length != len(payload)) {
			t.Fatalf("n=%d of %d, payload %d", n, len(b), len(payload))
		}
	})
}

// FuzzClientFrame decodes arbitrary payloads the way the gateway does
// before routing them: decode, find the group, check its ID.
func FuzzClientFrame(f *testing.F) {
	for _, m := range []*liveimpb.ClientFrame{
		{Id: 1, Body: &liveimpb.ClientFrame_JoinGroup{JoinGroup: &liveimpb.JoinGroupRequest{GroupId: "room-1"}}},
		{Id: 2, Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{GroupId: "r", Data: "x", Type: 10001}}},
		{Id: 3, Body: &liveimpb.ClientFrame_Login{Login: &liveimpb.LoginRequest{AppId: "a", User: &liveimpb.User{UserId: "u"}}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cf liveimpb.ClientFrame
		if err := proto.Unmarshal(b, &cf); err != nil {
			return
		}
		if g, ok := liveimpb.FrameGroupID(&cf); ok && g != "" {
			_ = ids.Check("groupId", g)
		}
	})
}

// FuzzCloseReply: whatever a client's close frame holds, the gateway
// answers 1000, 1002 or 1007, and 1000 only for a body RFC 6455 allows.
func FuzzCloseReply(f *testing.F) {
	f.Add([]byte{})
	f.Add(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
	f.Add([]byte{0x03, 0xed})
	f.Add([]byte{0x03, 0xe8, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		got := closeReply(payload)
		switch got {
		case ws.StatusNormalClosure:
			if len(payload) == 1 || (len(payload) >= 2 && ws.CheckCloseFrameData(ws.ParseCloseFrameData(payload)) != nil) {
				t.Fatalf("%x answered 1000", payload)
			}
		case ws.StatusProtocolError, ws.StatusInvalidFramePayloadData:
		default:
			t.Fatalf("%x answered %d", payload, got)
		}
	})
}
