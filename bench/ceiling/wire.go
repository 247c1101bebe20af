package ceiling

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
)

// Messages. A payload starts with its send time in decimal Unix
// nanoseconds, padded with spaces to the payload size; a probe, sent
// before measuring to check every member is reachable, starts with
// "probe" instead.

var probePrefix = []byte("probe")

// stampPayload fills p with stamp followed by spaces and returns it.
func stampPayload(p []byte, stamp int64) []byte {
	n := copy(p, strconv.AppendInt(p[:0:0], stamp, 10))
	for i := n; i < len(p); i++ {
		p[i] = ' '
	}
	return p
}

// probePayload returns a probe of size bytes.
func probePayload(size int) []byte {
	p := bytes.Repeat([]byte{' '}, size)
	copy(p, probePrefix)
	return p
}

// parseStamp reads the send time at the start of p; probe reports a probe.
func parseStamp(p []byte) (stamp int64, probe bool) {
	if bytes.HasPrefix(p, probePrefix) {
		return 0, true
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			break
		}
		stamp = stamp*10 + int64(c-'0')
	}
	return stamp, false
}

// WebSocket frames (RFC 6455): FIN always set, no extensions.

const (
	opBinary = 0x2
	opClose  = 0x8
	// maxFrame bounds a frame this package accepts.
	maxFrame = 1 << 20
)

var errBadFrame = errors.New("ceiling: bad websocket frame")

// appendFrame appends a final frame with opcode op and payload to dst,
// masked with key when key is not nil (client to server).
func appendFrame(dst []byte, op byte, payload []byte, key *[4]byte) []byte {
	var maskBit byte
	if key != nil {
		maskBit = 0x80
	}
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, maskBit|byte(n))
	case n < 1<<16:
		dst = append(dst, maskBit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if key == nil {
		return append(dst, payload...)
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range payload {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

// wsFrame is one parsed frame; payload aliases the input.
type wsFrame struct {
	op      byte
	payload []byte
}

// parseFrame splits one frame off b, unmasking a masked payload in place.
// used is 0 when b does not hold a whole frame yet.
func parseFrame(b []byte) (f wsFrame, used int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	hdr, n := 2, uint64(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return f, 0, nil
		}
		hdr, n = 4, uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if len(b) < 10 {
			return f, 0, nil
		}
		hdr, n = 10, binary.BigEndian.Uint64(b[2:10])
	}
	if n > maxFrame {
		return f, 0, errBadFrame
	}
	masked := b[1]&0x80 != 0
	if masked {
		hdr += 4
	}
	if len(b) < hdr+int(n) {
		return f, 0, nil
	}
	p := b[hdr : hdr+int(n)]
	if masked {
		key := b[hdr-4 : hdr]
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	return wsFrame{op: b[0] & 0x0f, payload: p}, hdr + int(n), nil
}

// The NATS client protocol, the few operations a subscriber sees.

const (
	opMsg = iota + 1
	opPing
	opPong
	opInfo
	opOK
	opErr
)

// maxControlLine bounds a protocol line (nats-server's default is 4 KiB).
const maxControlLine = 4096

var (
	crlf        = []byte("\r\n")
	errBadNATS  = errors.New("ceiling: bad NATS protocol line")
	natsPong    = []byte("PONG\r\n")
	natsPrefixM = []byte("MSG ")
)

// natsOp splits one protocol operation off b; for MSG, payload is the
// message body. used is 0 when b does not hold a whole operation yet.
func natsOp(b []byte) (op int, payload []byte, used int, err error) {
	i := bytes.Index(b, crlf)
	if i < 0 {
		if len(b) > maxControlLine {
			return 0, nil, 0, errBadNATS
		}
		return 0, nil, 0, nil
	}
	line := b[:i]
	switch {
	case bytes.HasPrefix(line, natsPrefixM):
		size, ok := atoi(line[bytes.LastIndexByte(line, ' ')+1:])
		if !ok {
			return 0, nil, 0, errBadNATS
		}
		end := i + 2 + size
		if len(b) < end+2 {
			return 0, nil, 0, nil
		}
		return opMsg, b[i+2 : end], end + 2, nil
	case bytes.Equal(line, []byte("PING")):
		return opPing, nil, i + 2, nil
	case bytes.Equal(line, []byte("PONG")):
		return opPong, nil, i + 2, nil
	case bytes.HasPrefix(line, []byte("INFO")):
		return opInfo, nil, i + 2, nil
	case bytes.Equal(line, []byte("+OK")):
		return opOK, nil, i + 2, nil
	case bytes.HasPrefix(line, []byte("-ERR")):
		return opErr, line, i + 2, nil
	}
	return 0, nil, 0, errBadNATS
}

// atoi parses a non-negative decimal of at most 9 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
