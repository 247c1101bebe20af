package gateway

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/proto/liveimpb"
)

// minDrainStep is the shortest wait between two drain closes: closes due
// closer together than this go out together.
const minDrainStep = 10 * time.Millisecond

// drain tells every client to reconnect elsewhere, spread evenly over
// window (Config.DrainDelay) rather than all at once, so the other
// gateways see a steady stream of reconnects and logins instead of a
// storm. With n connections the k-th (from 1) is closed window·k/n after
// the drain began, the last at the end of the window; a gateway running
// behind its schedule closes what is due at once, so the drain never takes
// much longer than the window. It returns when the window is over. New
// upgrades are refused meanwhile (serveWS), and Run closes whatever is
// left afterwards.
func (g *Gateway) drain(window time.Duration) {
	start := time.Now()
	end := start.Add(window)
	conns := g.openConns()
	n := len(conns)
	for i, c := range conns {
		due := start.Add(time.Duration(float64(window) * float64(i+1) / float64(n)))
		if wait := time.Until(due); wait >= minDrainStep {
			time.Sleep(wait)
		}
		c.closeWith(ws.StatusGoingAway, shutdownText, &liveimpb.DisconnectEvent{Reason: shutdownText, Reconnect: true})
	}
	if wait := time.Until(end); wait > 0 {
		time.Sleep(wait)
	}
}

// openConns returns every connection the gateway holds, on whichever I/O
// path it runs (Config.IO): the epoll loops' or the portable engine's.
// Before Run has started the engine there are none.
func (g *Gateway) openConns() []*conn {
	if g.eng == nil {
		return nil
	}
	return g.eng.conns()
}
