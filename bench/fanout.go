package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/proto/liveimpb"
)

// runFanout sends Rate messages a second for Duration into the one room
// every worker client joined (one in HighEvery is HIGH), then collects the
// workers' receipts: latency percentiles, deliveries, HIGH lost and
// duplicated, NORMAL dropped.
func runFanout(ctx context.Context, cfg Config, srv *servers, app demoapp.Info, workers []*worker, members int, res *Result) error {
	cl, err := client.Dial(ctx, srv.urls[0])
	if err != nil {
		return err
	}
	defer cl.Close()
	go func() { // the sender is a member too; its own copies are not counted
		for range cl.Events() {
		}
	}()
	cr := auth.Issue(app.AppID, app.AppKey, "bench-sender", auth.RoleAdmin, "b", time.Hour, time.Now())
	if _, err := cl.Login(ctx, client.Login{AppID: app.AppID, UserID: "bench-sender",
		Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		return err
	}
	if _, err := cl.JoinGroup(ctx, roomName(0)); err != nil {
		return err
	}
	_, cpuBefore, err := srv.usage()
	if err != nil {
		return err
	}
	var sentNormal, sentHigh int64
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	start := time.Now()
	for i := 0; time.Since(start) < cfg.Duration; i++ {
		<-tick.C
		level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
		if i%cfg.HighEvery == 0 {
			level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
		}
		_, err := cl.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{
			GroupId: roomName(0), Type: 10001, Data: strconv.FormatInt(time.Now().UnixNano(), 10), Level: level, NoStorage: true,
		})
		switch {
		case err != nil:
			res.Errors++
		case level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH:
			sentHigh++
		default:
			sentNormal++
		}
	}
	elapsed := time.Since(start).Seconds()
	time.Sleep(2 * time.Second) // let the last deliveries land
	rssAfter, cpuAfter, err := srv.usage()
	if err != nil {
		return err
	}
	res.ServerRSSBytes = rssAfter
	hist := make([]int64, histBuckets)
	var normal, high, dups int64
	for _, w := range workers {
		if _, err := fmt.Fprintln(w.stdin, "report"); err != nil {
			return err
		}
		line, err := w.line()
		var st readStats
		if err != nil || json.Unmarshal([]byte(line), &st) != nil {
			return fmt.Errorf("bench: worker report %q (%v)", line, err)
		}
		for b, n := range st.Hist {
			hist[b] += n
		}
		normal, high, dups = normal+st.Normal, high+st.High, dups+st.HighDups
	}
	res.CPUSeconds = cpuAfter - cpuBefore
	deliveries := normal + high
	res.DeliveriesPerSec = float64(deliveries) / elapsed
	if res.CPUSeconds > 0 {
		res.DeliveriesPerGatewayCPUSec = float64(deliveries) / res.CPUSeconds
	}
	res.P50Ms, res.P99Ms, res.P999Ms = percentile(hist, 0.5), percentile(hist, 0.99), percentile(hist, 0.999)
	res.HighLost = int(int64(members)*sentHigh - high)
	res.HighDuplicated = int(dups)
	res.NormalDropped = int(int64(members)*sentNormal - normal)
	return nil
}
