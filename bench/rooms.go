package bench

import (
	"encoding/json"
	"fmt"
	"os"
)

// runSends is the rooms and c2c scenarios: the workers' own clients send,
// Config.Rate messages a second in all, for Config.Duration. In rooms each
// client sends to its room (Connections/Rooms members each); in c2c user n
// sends to user n+1.
func runSends(cfg Config, srv *servers, workers []*worker, members int, res *Result) (start, end []ProcessStat, err error) {
	kind := "group"
	if cfg.Scenario == "c2c" {
		kind = "c2c"
	}
	sj := sendJob{Kind: kind, Rate: cfg.Rate / float64(len(workers)), Duration: cfg.Duration,
		HighEvery: cfg.HighEvery, Rooms: cfg.Rooms, Users: cfg.Connections, NoStorage: cfg.NoStorage}
	b, _ := json.Marshal(sj)
	ph, err := beginPhase(srv, workers)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range workers {
		if _, err := fmt.Fprintf(w.stdin, "send %s\n", b); err != nil {
			return nil, nil, err
		}
	}
	var sent sendReport
	for _, w := range workers {
		line, err := w.line()
		var r sendReport
		if err != nil || json.Unmarshal([]byte(line), &r) != nil {
			return nil, nil, fmt.Errorf("bench: worker send report %q (%v)", line, err)
		}
		sent.Normal, sent.High, sent.Failed = sent.Normal+r.Normal, sent.High+r.High, sent.Failed+r.Failed
	}
	end, st, elapsed, err := ph.end(srv, workers, res)
	if err != nil {
		return nil, nil, err
	}
	if st.Rejected > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d sends rejected, first: %q\n", st.Rejected, st.FirstRejected)
	}
	res.Sent = sent.Normal + sent.High
	res.Errors += int(sent.Failed)
	// Rejected sends deliver nothing, NORMAL or HIGH: a HIGH send refused
	// (503 when its HIGH stream lags) is not a HIGH message lost.
	okNormal, okHigh := sent.Normal-(st.Rejected-st.RejectedHigh), sent.High-st.RejectedHigh
	perMessage := int64(1)
	if kind == "group" {
		perMessage = int64(cfg.Connections / cfg.Rooms)
	}
	st.account(res, elapsed, okNormal*perMessage, okHigh*perMessage)
	return ph.start, end, nil
}
