package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/bench/latency"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/procstat"
	"github.com/liveim/liveim/proto/liveimpb"
)

// runFanout sends Rate messages a second for Duration into the one room
// every worker client joined (one in HighEvery is HIGH), then collects the
// workers' receipts: latency percentiles, deliveries, HIGH lost and
// duplicated, NORMAL dropped.
func runFanout(ctx context.Context, cfg Config, srv *servers, app demoapp.Info, workers []*worker, members int, res *Result) (start, end []ProcessStat, err error) {
	cl, err := client.Dial(ctx, srv.clientURLs()[0])
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	go func() { // the sender is a member too; its own copies are not counted
		for range cl.Events() {
		}
	}()
	cr := auth.Issue(app.AppID, app.AppKey, "bench-sender", auth.RoleAdmin, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
	if _, err := cl.Login(ctx, client.Login{AppID: app.AppID, UserID: "bench-sender",
		Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		return nil, nil, err
	}
	if _, err := cl.JoinGroup(ctx, roomName(0)); err != nil {
		return nil, nil, err
	}
	ph, err := beginPhase(srv, workers)
	if err != nil {
		return nil, nil, err
	}
	var sentNormal, sentHigh int64
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	for i := 0; time.Since(ph.begin) < cfg.Duration; i++ {
		<-tick.C
		level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
		if i%cfg.HighEvery == 0 {
			level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
		}
		_, err := cl.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{
			GroupId: roomName(0), Type: 10001, Data: strconv.FormatInt(time.Now().UnixNano(), 10), Level: level, NoStorage: cfg.NoStorage,
		})
		switch {
		case err != nil:
			res.Rejected++
		case level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH:
			sentHigh++
		default:
			sentNormal++
		}
	}
	end, st, elapsed, err := ph.end(srv, workers, res)
	if err != nil {
		return nil, nil, err
	}
	res.Sent = sentNormal + sentHigh
	st.account(res, elapsed, int64(members)*sentNormal, int64(members)*sentHigh)
	return ph.start, end, nil
}

// phase is the measured part of a sending scenario: the servers', the
// workers' and the machine's CPU are counted from its beginning.
type phase struct {
	begin      time.Time
	start      []ProcessStat
	loadCPU    float64
	machineCPU float64
}

func beginPhase(srv *servers, workers []*worker) (phase, error) {
	start, err := srv.usage()
	if err != nil {
		return phase{}, err
	}
	machine, _ := procstat.MachineCPU()
	return phase{begin: time.Now(), start: start, loadCPU: workersCPU(workers), machineCPU: machine}, nil
}

// end closes the phase once sending is over: it waits for the last
// deliveries, reads the processes and collects what the workers received.
// elapsed is the sending time, in seconds.
func (ph phase) end(srv *servers, workers []*worker, res *Result) (end []ProcessStat, st readStats, elapsed float64, err error) {
	elapsed = time.Since(ph.begin).Seconds()
	time.Sleep(2 * time.Second) // let the last deliveries land
	if end, err = srv.usage(); err != nil {
		return nil, st, 0, err
	}
	res.LoadCPUSeconds = workersCPU(workers) - ph.loadCPU
	if m, err := procstat.MachineCPU(); err == nil {
		res.MachineCPUSeconds = m - ph.machineCPU
	}
	st, err = collect(workers)
	return end, st, elapsed, err
}

// collect asks every worker for what its members received.
func collect(workers []*worker) (readStats, error) {
	total := readStats{Hist: latency.New()}
	for _, w := range workers {
		if _, err := fmt.Fprintln(w.stdin, "report"); err != nil {
			return total, err
		}
		line, err := w.line()
		var st readStats
		if err != nil || json.Unmarshal([]byte(line), &st) != nil {
			return total, fmt.Errorf("bench: worker report %q (%v)", line, err)
		}
		total.Hist.Merge(st.Hist)
		total.Normal += st.Normal
		total.High += st.High
		total.HighDups += st.HighDups
		total.C2C += st.C2C
		total.Replies += st.Replies
		total.Rejected += st.Rejected
		total.RejectedHigh += st.RejectedHigh
		if total.FirstRejected == "" {
			total.FirstRejected = st.FirstRejected
		}
	}
	return total, nil
}

// account fills res from what was received over elapsed seconds, against
// the NORMAL and HIGH deliveries expected.
func (st readStats) account(res *Result, elapsed float64, wantNormal, wantHigh int64) {
	deliveries := st.Normal + st.High + st.C2C
	res.DeliveriesPerSec = float64(deliveries) / elapsed
	res.P50Ms, res.P99Ms, res.P999Ms = st.Hist.Percentile(0.5), st.Hist.Percentile(0.99), st.Hist.Percentile(0.999)
	res.HighLost = int(wantHigh - st.High)
	res.HighDuplicated = int(st.HighDups)
	res.NormalDropped = int(wantNormal - st.Normal - st.C2C)
	res.Rejected += st.Rejected
}
