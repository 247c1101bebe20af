package ceiling

import (
	"errors"
	"time"
)

// errStopped is returned by pace when stop closed before all sends.
var errStopped = errors.New("ceiling: stopped")

// paced is what pace did.
type paced struct {
	start   time.Time
	elapsed time.Duration
	sent    int
	maxLag  time.Duration
}

// pace calls send n times, the i-th due at start + i/rate, never
// skipping one: a sender behind schedule sends at once. Each call gets a
// send time stamp and how late it is. The stamp is the time of the call;
// when the sender is more than one interval behind, it is the time the
// message was due instead, so a backlog shows as latency, as it would for
// a message that waits in a server's queue.
func pace(stop <-chan struct{}, n int, rate float64, send func(stamp int64, lag time.Duration) error) (paced, error) {
	interval := time.Duration(float64(time.Second) / rate)
	p := paced{start: time.Now()}
	for i := range n {
		due := p.start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-stop:
				p.elapsed = time.Since(p.start)
				return p, errStopped
			case <-time.After(d):
			}
		}
		now := time.Now()
		lag := now.Sub(due)
		stamp := now
		if lag > interval {
			stamp = due
		}
		if err := send(stamp.UnixNano(), lag); err != nil {
			p.elapsed = time.Since(p.start)
			return p, err
		}
		p.sent++
		p.maxLag = max(p.maxLag, lag)
	}
	p.elapsed = time.Since(p.start)
	return p, nil
}
