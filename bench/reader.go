package bench

import (
	"encoding/binary"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/liveim/liveim/bench/latency"
	"github.com/liveim/liveim/proto/liveimpb"
)

// fanoutReader reads every member socket of a worker on one epoll loop
// (reader_linux.go): receivers cost no goroutine each. It records, per delivered group
// message, the send-to-receipt latency (the sender puts its clock in the
// data) and, per socket, HIGH seqnums, to count losses and duplicates.
type fanoutReader struct {
	epfd int

	mu       sync.Mutex
	conns    map[int32]*memberConn
	hist     latency.Hist
	normal   int64
	high     int64
	highDups int64
	c2c      int64
	replies  int64 // replies to sends
	rejected int64 // replies with an error code
	// rejectedHigh counts the rejected replies to HIGH sends: a send job
	// makes every highEvery-th request ID HIGH (0: none).
	rejectedHigh int64
	highEvery    uint64
	firstRej     string
}

// memberConn is one receiving socket.
type memberConn struct {
	fd       int
	user     int // the bench user logged in on it
	partial  []byte
	lastHigh int64
	highs    int64
}

// consume counts the complete server frames of data (c's kept bytes and
// what was just read) and keeps the bytes of an incomplete one.
func (r *fanoutReader) consume(c *memberConn, data []byte) {
	now := time.Now().UnixNano()
	for {
		payload, used, ok := serverFrame(data)
		if !ok {
			break
		}
		r.frame(c, payload, now)
		data = data[used:]
	}
	c.partial = append(c.partial[:0], data...)
}

// serverFrame splits one unmasked server frame off b.
func serverFrame(b []byte) (payload []byte, used int, ok bool) {
	if len(b) < 2 {
		return nil, 0, false
	}
	hdr, length := 2, int(b[1]&0x7f)
	switch length {
	case 126:
		if len(b) < 4 {
			return nil, 0, false
		}
		hdr, length = 4, int(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if len(b) < 10 {
			return nil, 0, false
		}
		hdr, length = 10, int(binary.BigEndian.Uint64(b[2:10]))
	}
	if len(b) < hdr+length {
		return nil, 0, false
	}
	return b[hdr : hdr+length], hdr + length, true
}

// frame counts the group messages of one server frame: a lone event or a
// merged batch. It walks the protobuf wire format instead of decoding
// messages, so a worker reading a million deliveries a second stays
// cheaper than the gateway it measures.
func (r *fanoutReader) frame(c *memberConn, payload []byte, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	forEachField(payload, func(num protowire.Number, v []byte) {
		switch num {
		case 1: // ServerFrame.reply: the answer to a worker's send
			r.replies++
			var id uint64
			rejected := false
			forEachField(v, func(num protowire.Number, f []byte) {
				switch num {
				case 1: // Reply.id
					id, _ = protowire.ConsumeVarint(f)
				case 2: // Reply.code, absent when 0
					rejected = true
				}
			})
			if rejected {
				r.rejected++
				if r.highEvery > 0 && id%r.highEvery == 0 {
					r.rejectedHigh++
				}
				if r.firstRej == "" {
					r.firstRej = string(v)
				}
			}
		case 2: // ServerFrame.event
			r.event(c, v, now)
		case 3: // ServerFrame.batch
			forEachField(v, func(num protowire.Number, ev []byte) {
				if num == 1 { // EventBatch.events
					r.event(c, ev, now)
				}
			})
		}
	})
}

// event counts one Event if it is a group message. r.mu is held.
func (r *fanoutReader) event(c *memberConn, ev []byte, now int64) {
	forEachField(ev, func(num protowire.Number, msg []byte) {
		if num != 1 && num != 2 { // Event.group_message, Event.c2c_message
			return
		}
		var sent, seqnum int64
		high := false
		forEachField(msg, func(num protowire.Number, v []byte) {
			switch num {
			case 5: // Message.data: the sender's clock
				sent, _ = strconv.ParseInt(string(v), 10, 64)
			case 6: // Message.seqnum
				u, _ := protowire.ConsumeVarint(v)
				seqnum = int64(u)
			case 8: // Message.level
				u, _ := protowire.ConsumeVarint(v)
				high = liveimpb.MessageLevel(u) == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
			}
		})
		if sent > 0 && now > sent {
			r.hist.Add(now - sent)
		}
		if num == 2 {
			r.c2c++
			return
		}
		if !high {
			r.normal++
			return
		}
		if seqnum <= c.lastHigh {
			r.highDups++
			return
		}
		c.lastHigh = seqnum
		c.highs++
		r.high++
	})
}

// forEachField calls f with each field of a protobuf message: for a
// length-delimited field its contents, for a varint its encoding. Other
// wire types are skipped; a malformed message stops the walk.
func forEachField(b []byte, f func(num protowire.Number, v []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			f(num, v)
			b = b[m:]
		case protowire.VarintType:
			_, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return
			}
			f(num, b[:m])
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return
			}
			b = b[m:]
		}
	}
}
