package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ipLimits caps, per client address, the WebSocket connections held and
// the upgrades per second (a token bucket). Entries of addresses with no
// connection and a full bucket are swept.
type ipLimits struct {
	maxConns int     // ≤ 0: no cap
	rate     float64 // upgrades per second; ≤ 0: no cap
	burst    float64

	mu  sync.Mutex // leaf lock
	ips map[netip.Addr]*ipState
}

type ipState struct {
	conns  int
	tokens float64
	last   time.Time
}

func newIPLimits(maxConns int, rate float64, burst int) *ipLimits {
	return &ipLimits{maxConns: maxConns, rate: rate, burst: float64(burst), ips: make(map[netip.Addr]*ipState)}
}

// admit takes a connection slot and an upgrade token for ip, reporting
// false (429) when either is used up.
func (l *ipLimits) admit(ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.ips[ip]
	if st == nil {
		st = &ipState{tokens: l.burst, last: now}
		l.ips[ip] = st
	}
	if l.maxConns > 0 && st.conns >= l.maxConns {
		return false
	}
	if l.rate > 0 {
		st.tokens = min(l.burst, st.tokens+now.Sub(st.last).Seconds()*l.rate)
		st.last = now
		if st.tokens < 1 {
			return false
		}
		st.tokens--
	}
	st.conns++
	return true
}

// release gives back ip's connection slot.
func (l *ipLimits) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.ips[ip]; st != nil && st.conns > 0 {
		st.conns--
	}
}

// sweep forgets addresses with no connection whose bucket has refilled.
func (l *ipLimits) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, st := range l.ips {
		if st.conns == 0 && (l.rate <= 0 || st.tokens+now.Sub(st.last).Seconds()*l.rate >= l.burst) {
			delete(l.ips, ip)
		}
	}
}

// clientIP returns the address a request comes from. Behind a trusted
// proxy (a load balancer or ingress listed in Config.TrustedProxies) it
// is the right-most X-Forwarded-For address that is not itself a
// trusted proxy; anything a client wrote further left is ignored.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if !isTrusted(ip, trusted) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		hop = hop.Unmap()
		if !isTrusted(hop, trusted) {
			return hop
		}
	}
	return ip
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
