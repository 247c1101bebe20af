package bench

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/bench/latency"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestRejectedHighSendsCounted: the reader tells the refused replies to
// HIGH sends (every highEvery-th request ID) from the others, so a run
// whose HIGH sends were refused (503) reports them as refused, not as
// HIGH messages lost.
func TestRejectedHighSendsCounted(t *testing.T) {
	r := &fanoutReader{conns: map[int32]*memberConn{}, hist: latency.New(), highEvery: 10}
	reply := func(id uint32, code int32) []byte {
		b, err := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Reply{Reply: &liveimpb.Reply{Id: id, Code: code, Msg: "m"}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := &memberConn{}
	for _, f := range [][]byte{reply(10, 503), reply(11, 503), reply(20, 0), reply(30, 412), reply(7, 0)} {
		r.frame(c, f, 0)
	}
	if r.replies != 5 || r.rejected != 3 || r.rejectedHigh != 2 {
		t.Fatalf("replies %d, rejected %d of which HIGH %d; want 5, 3, 2", r.replies, r.rejected, r.rejectedHigh)
	}
}
