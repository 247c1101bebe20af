package gateway

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// Errors of parseFrame. Each maps onto a WebSocket close status.
var (
	errFrameTooLarge = errors.New("gateway: frame larger than the limit")
	errProtocol      = errors.New("gateway: websocket protocol violation")
)

// frameHeader is a parsed client frame header.
type frameHeader struct {
	fin    bool
	op     ws.OpCode
	length int
}

// maxHeaderLen is the longest frame header: 2 + 8 length bytes + 4 mask.
const maxHeaderLen = 14

// parseFrame parses the client frame at the start of b, over the caller's
// buffer and without copying. It returns the header, the payload, unmasked
// in place, and the number of bytes the frame takes. n == 0 with a nil
// error means b holds only part of a frame. The payload aliases b: it is
// valid until the caller reuses b.
//
// Client frames must be masked and carry no RSV bits (no extension is
// negotiated); control frames must be final and at most 125 bytes; a
// payload over max is errFrameTooLarge.
func parseFrame(b []byte, max int) (h frameHeader, payload []byte, n int, err error) {
	if len(b) < 2 {
		return h, nil, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&0x80 != 0
	h.op = ws.OpCode(b0 & 0x0f)
	if b0&0x70 != 0 || b1&0x80 == 0 {
		return h, nil, 0, errProtocol
	}
	hdr := 2
	length := uint64(b1 & 0x7f)
	switch length {
	case 126:
		if len(b) < 4 {
			return h, nil, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
		hdr = 4
	case 127:
		if len(b) < 10 {
			return h, nil, 0, nil
		}
		length = binary.BigEndian.Uint64(b[2:10])
		if length>>63 != 0 {
			return h, nil, 0, errProtocol
		}
		hdr = 10
	}
	if h.op.IsControl() && (!h.fin || length > 125) {
		return h, nil, 0, errProtocol
	}
	switch h.op {
	case ws.OpContinuation, ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong:
	default: // reserved opcodes, data (0x3-0x7) and control (0xB-0xF) alike
		return h, nil, 0, errProtocol
	}
	if length > uint64(max) {
		return h, nil, 0, errFrameTooLarge
	}
	if len(b) < hdr+4 {
		return h, nil, 0, nil
	}
	var mask [4]byte
	copy(mask[:], b[hdr:hdr+4])
	hdr += 4
	total := hdr + int(length)
	if len(b) < total {
		return h, nil, 0, nil
	}
	h.length = int(length)
	payload = b[hdr:total]
	ws.Cipher(payload, mask, 0)
	return h, payload, total, nil
}

// appendFrame appends one unmasked, final server frame with the given
// opcode and payload to dst.
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = appendHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// appendHeader appends the header of an unmasked, final server frame.
func appendHeader(dst []byte, op ws.OpCode, length int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case length < 126:
		return append(dst, byte(length))
	case length <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(length))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(length))
	}
}

// headerLen is the size of a server frame header for a payload of length.
func headerLen(length int) int {
	switch {
	case length < 126:
		return 2
	case length <= 0xffff:
		return 4
	default:
		return 10
	}
}

// closeReply returns the status the gateway answers a client's close
// frame with (RFC 6455 section 7.4): the client's own close is echoed as
// 1000; a one-byte body or a status that must not appear on the wire is a
// protocol error (1002); a reason that is not UTF-8 is 1007.
func closeReply(payload []byte) ws.StatusCode {
	switch len(payload) {
	case 0:
		return ws.StatusNormalClosure
	case 1:
		return ws.StatusProtocolError
	}
	err := ws.CheckCloseFrameData(ws.ParseCloseFrameDataUnsafe(payload))
	switch {
	case err == nil:
		return ws.StatusNormalClosure
	case errors.Is(err, ws.ErrProtocolInvalidUTF8):
		return ws.StatusInvalidFramePayloadData
	}
	return ws.StatusProtocolError
}

// closeFrame returns a complete close frame with status and reason.
func closeFrame(status ws.StatusCode, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return appendFrame(nil, ws.OpClose, ws.NewCloseFrameBody(status, reason))
}
