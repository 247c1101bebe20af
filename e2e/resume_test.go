package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

// TestResumeFromMemoryAnswersAsTheStream: a router answers resumes of a
// group's recent HIGH messages from memory (the group's tail), and those
// answers are the ones the HIGH stream gives: the same messages, pages
// and order, deleted ones left out, a noStorage message only to members
// who were there. Each resume is asked of the router that sent the
// messages, then twice of a router started after it stopped, which has
// no tail and reads the stream until a read reaching back to its tail's
// start extends the tail. With a small memory budget the older messages
// have left memory and resumes from before them read the stream while
// later ones read memory.
func TestResumeFromMemoryAnswersAsTheStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory int64
	}{
		{"whole tail in memory", 0},
		{"budget for the last ~90", 40 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A router extends a tail from a stream read only once the
			// group's previous owner can land nothing more: DedupeWindow
			// after it loaded the group (2 min by default).
			rc := router.Config{ResumeBatch: 50, Workers: 1, ResumeMemory: tc.memory, DedupeWindow: time.Second}
			c := testcluster.Start(t, testcluster.Options{Router: rc, Gateway: gateway.Config{SendRate: 1e4, SendBurst: 1000}})
			owner := c.Login(t, 0, "owner", "admin")
			createGroup(t, owner, "room")
			join(t, owner, "room")
			rnd := rand.New(rand.NewPCG(1, uint64(tc.memory)))
			type sent struct {
				msg               *liveimpb.SendMessageReply
				high, noStorage   bool
				deleted, beforeIn bool
			}
			var all []*sent
			sendSome := func(n int, beforeIn bool) {
				for i := range n {
					s := &sent{beforeIn: beforeIn}
					req := &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: fmt.Sprintf("m%d-%d", len(all), i)}
					switch p := rnd.IntN(10); {
					case p < 6:
						s.high = true
					case p < 8:
						s.high, s.noStorage = true, true
					}
					if s.high {
						req.Level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
					}
					req.NoStorage = s.noStorage
					rep, err := owner.SendGroupMessage(ctxT(t), req)
					if err != nil {
						t.Fatal(err)
					}
					s.msg = rep
					all = append(all, s)
				}
			}
			sendSome(100, true)
			time.Sleep(5 * time.Millisecond) // the viewer joins after the first messages' millisecond
			viewer := c.Login(t, 0, "viewer", "")
			join(t, viewer, "room")
			sendSome(200, false)
			for _, s := range all {
				if s.high && !s.noStorage && rnd.IntN(10) == 0 {
					if err := owner.DeleteMessage(ctxT(t), "room", s.msg.MessageId); err != nil {
						t.Fatal(err)
					}
					s.deleted = true
				}
			}
			want := func(after int64) []string {
				var out []string
				for _, s := range all {
					if s.high && !s.deleted && !(s.noStorage && s.beforeIn) && s.msg.Seqnum > after {
						out = append(out, s.msg.MessageId)
					}
				}
				return out
			}
			afters := []int64{0, all[10].msg.Seqnum, all[150].msg.Seqnum, all[280].msg.Seqnum, all[299].msg.Seqnum - 1}
			// A client names the last deletion it knows: none, or all of
			// them (the deleted messages must stay out either way).
			_, lastDelete := resumeAll(t, viewer, "room", 0, 0)
			type ask struct{ after, afterDelete int64 }
			var asks []ask
			for _, after := range afters {
				asks = append(asks, ask{after, 0}, ask{after, lastDelete})
			}
			first := make(map[ask][]string)
			for _, a := range asks {
				got, _ := resumeAll(t, viewer, "room", a.after, a.afterDelete)
				if w := want(a.after); !slices.Equal(got, w) {
					t.Fatalf("resume %+v from the first router: %d messages, want %d; first difference at %d", a, len(got), len(w), firstDiff(got, w))
				}
				first[a] = got
			}
			st := c.Router(0).Stats()
			if st.ResumesFromMemory == 0 || tc.memory != 0 && st.ResumesFromStream == 0 || tc.memory == 0 && st.ResumesFromStream != 0 {
				t.Fatalf("resumes from memory %d, from the stream %d", st.ResumesFromMemory, st.ResumesFromStream)
			}
			if st.ResumeMemory != 0 && tc.memory != 0 && st.ResumeMemory > tc.memory {
				t.Fatalf("the tail takes %d bytes, over its budget of %d", st.ResumeMemory, tc.memory)
			}

			if err := c.Router(0).Stop(); err != nil {
				t.Fatal(err)
			}
			// The new router has no tail: its first resumes read the
			// stream, and a read that reaches back to where the tail
			// starts lets the tail start where it did, so the same
			// resumes read memory next. Both must answer the same.
			next := c.StartRouter()
			for pass := range 2 {
				for _, a := range asks {
					if got, _ := resumeAll(t, viewer, "room", a.after, a.afterDelete); !slices.Equal(got, first[a]) {
						t.Fatalf("pass %d: resume %+v from the new router: %d messages, from the first %d; first difference at %d", pass, a, len(got), len(first[a]), firstDiff(got, first[a]))
					}
				}
			}
			if st := next.Stats(); st.ResumesFromStream == 0 {
				t.Fatalf("the new router resumed %d from memory, %d from the stream: want the first from the stream", st.ResumesFromMemory, st.ResumesFromStream)
			}
			// The read of the last messages reached the tail's start: a
			// resume after the 280th reads memory once the tail took them
			// (the first such read a DedupeWindow after the load).
			recent := ask{all[280].msg.Seqnum, lastDelete}
			deadline := time.Now().Add(20 * time.Second)
			for before := next.Stats().ResumesFromMemory; ; {
				if got, _ := resumeAll(t, viewer, "room", recent.after, recent.afterDelete); !slices.Equal(got, first[recent]) {
					t.Fatalf("resume %+v from the new router's memory: %d messages, want %d", recent, len(got), len(first[recent]))
				}
				if next.Stats().ResumesFromMemory > before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the stream's answer never reached the new router's memory")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// firstDiff returns the first index where a and b differ.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// resumeAll resumes a group after seq to its end, page by page, retrying
// a 503 (a router taking the group over), and returns the message IDs and
// the last deletion the router named.
func resumeAll(t *testing.T, cl *client.Client, groupID string, after, afterDelete int64) (ids []string, lastDelete int64) {
	t.Helper()
	for pages := 0; ; pages++ {
		var rep *liveimpb.ResumeGroupReply
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			if rep, err = cl.ResumeGroup(ctxT(t), groupID, after, afterDelete); testcluster.ErrCode(err) != 503 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("resume after %d: %v", after, err)
		}
		for _, m := range rep.Messages {
			if m.Seqnum <= after {
				t.Fatalf("resume gave seqnum %d after %d", m.Seqnum, after)
			}
			ids = append(ids, m.MessageId)
			after = m.Seqnum
		}
		afterDelete = rep.LastDeleteSeq
		if !rep.HasMore {
			return ids, afterDelete
		}
		if len(rep.Messages) == 0 && len(rep.DeletedMessageIds) == 0 || pages > 100 {
			t.Fatalf("page %d: hasMore with %d messages", pages, len(rep.Messages))
		}
	}
}
