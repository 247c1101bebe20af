package bench

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/proto/liveimpb"
)

// sendJob tells a worker to send messages from its own clients: "send"
// followed by this as JSON on its stdin. It answers with a sendReport
// once Duration is over.
type sendJob struct {
	// Kind is "group" (each user to its room) or "c2c" (user n to user
	// n+1).
	Kind     string        `json:"kind"`
	Rate     float64       `json:"rate"` // this worker's messages per second
	Duration time.Duration `json:"duration"`
	// HighEvery makes one group message in HighEvery HIGH.
	HighEvery int `json:"high_every"`
	Rooms     int `json:"rooms"`
	Users     int `json:"users"` // every worker's users together
	// NoStorage sets noStorage on group messages.
	NoStorage bool `json:"no_storage"`
}

// sendReport counts what a worker sent.
type sendReport struct {
	Normal int64 `json:"normal"`
	High   int64 `json:"high"`
	// Failed counts sends the socket did not take at once (a full send
	// buffer); the gateway never saw them.
	Failed int64 `json:"failed"`
}

// sendTick is how often a sending worker writes its next messages.
const sendTick = 5 * time.Millisecond

// send writes sj.Rate messages a second, round robin over the reader's
// sockets, for sj.Duration. Each message carries its send time as data,
// so receivers measure send to receipt. Replies are counted by the reader.
func (r *fanoutReader) send(sj sendJob) sendReport {
	r.mu.Lock()
	conns := make([]*memberConn, 0, len(r.conns))
	for _, c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	var rep sendReport
	if len(conns) == 0 || sj.Rate <= 0 {
		return rep
	}
	high := max(sj.HighEvery, 1)
	if sj.Kind == "group" {
		r.mu.Lock()
		r.highEvery = uint64(high) // the replies to IDs it divides are HIGH sends'
		r.mu.Unlock()
	}
	start := time.Now()
	tick := time.NewTicker(sendTick)
	defer tick.Stop()
	var id uint32
	var next int
	for now := start; now.Sub(start) < sj.Duration; now = <-tick.C {
		due := int64(now.Sub(start).Seconds() * sj.Rate)
		for ; rep.Normal+rep.High+rep.Failed < due; next++ {
			c := conns[next%len(conns)]
			id++
			level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
			if sj.Kind == "group" && id%uint32(high) == 0 {
				level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
			}
			frame := sendFrame(sj, c.user, id, level)
			if n, err := writeFD(c.fd, frame); err != nil || n != len(frame) {
				// A partial write would corrupt the stream; a full socket at
				// this rate means the bench, not the server, is the limit.
				rep.Failed++
				if n > 0 {
					return rep
				}
				continue
			}
			if level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
				rep.High++
			} else {
				rep.Normal++
			}
		}
	}
	return rep
}

// sendFrame returns the masked client frame of one bench message.
func sendFrame(sj sendJob, user int, id uint32, level liveimpb.MessageLevel) []byte {
	data := strconv.FormatInt(time.Now().UnixNano(), 10)
	f := &liveimpb.ClientFrame{Id: id}
	if sj.Kind == "c2c" {
		f.Body = &liveimpb.ClientFrame_SendC2CMessage{SendC2CMessage: &liveimpb.SendC2CMessageRequest{
			ReceiverId: "bench-" + strconv.Itoa((user+1)%sj.Users), Data: data, Type: 10001, Level: level,
		}}
	} else {
		f.Body = &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{
			GroupId: roomName(user % sj.Rooms), Data: data, Type: 10001, Level: level, NoStorage: sj.NoStorage,
		}}
	}
	payload, _ := proto.Marshal(f)
	return maskedFrame(payload)
}

// maskedFrame returns payload as one masked binary client frame.
func maskedFrame(payload []byte) []byte {
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, ws.MaskFrameInPlace(ws.NewBinaryFrame(payload))); err != nil {
		panic(errors.New("bench: frame to a buffer cannot fail"))
	}
	return buf.Bytes()
}
