package gateway

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
)

// pendingFiles is how many of fileReserve sockets not yet upgraded may
// use beyond MaxConns: the rest stays for NATS, the listener, epoll and
// the store.
const pendingFiles = fileReserve / 2

// pending tracks the client sockets accepted and not yet upgraded to
// WebSockets (Config.MaxPending, Config.MaxPendingPerIP). A socket that
// never finishes its request holds a file, a goroutine and its buffers
// until the read timeout; without a cap, one address opening sockets
// faster than that timeout closes them takes every file the process has.
// Oldest first, so the oldest is the one closed when the set is full:
// real clients finish their upgrade in milliseconds and are rarely it.
type pending struct {
	maxTotal int // < 0: no cap
	maxPerIP int // < 0: no cap
	maxConns int // Config.MaxConns; < 0: no cap
	trusted  []netip.Prefix
	m        *Metrics // its connections, and the counts of sockets closed here

	mu    sync.Mutex   // leaf lock
	head  *pendingConn // oldest
	tail  *pendingConn // newest
	n     int          // sockets listed
	perIP map[netip.Addr]int
}

func newPending(cfg Config, trusted []netip.Prefix, m *Metrics) *pending {
	return &pending{maxTotal: cfg.MaxPending, maxPerIP: cfg.MaxPendingPerIP, maxConns: cfg.MaxConns,
		trusted: trusted, m: m, perIP: make(map[netip.Addr]int)}
}

// pendingConn is an accepted socket, in pending's list until it is
// upgraded or closed.
type pendingConn struct {
	net.Conn
	p          *pending
	ip         netip.Addr
	prev, next *pendingConn
	listed     bool // guarded by p.mu
}

// full reports whether one more socket would pass a cap; p.mu is held.
func (p *pending) full() bool {
	if p.maxTotal >= 0 && p.n >= p.maxTotal {
		return true
	}
	return p.maxConns >= 0 && int64(p.n)+p.m.connections.Load() >= int64(p.maxConns+pendingFiles)
}

// admit lists a newly accepted socket, or closes it and returns nil when
// its address already holds MaxPendingPerIP. When the set is full the
// oldest socket is closed to make room.
func (p *pending) admit(c net.Conn) net.Conn {
	ip := peerIP(c)
	var evict []*pendingConn
	p.mu.Lock()
	if p.maxPerIP >= 0 && p.perIP[ip] >= p.maxPerIP && !isTrusted(ip, p.trusted) {
		p.mu.Unlock()
		_ = c.Close()
		p.m.pendingByAddress.Add(1)
		return nil
	}
	for p.head != nil && p.full() {
		old := p.head
		p.unlistLocked(old)
		evict = append(evict, old)
	}
	pc := &pendingConn{Conn: c, p: p, ip: ip}
	p.listLocked(pc)
	p.mu.Unlock()
	for _, old := range evict {
		_ = old.Conn.Close() // its server goroutine sees the error and ends
		p.m.pendingOldest.Add(1)
	}
	return pc
}

func (p *pending) listLocked(pc *pendingConn) {
	pc.listed = true
	pc.prev = p.tail
	if p.tail != nil {
		p.tail.next = pc
	} else {
		p.head = pc
	}
	p.tail = pc
	p.n++
	p.perIP[pc.ip]++
}

func (p *pending) unlistLocked(pc *pendingConn) {
	if !pc.listed {
		return
	}
	pc.listed = false
	if pc.prev != nil {
		pc.prev.next = pc.next
	} else {
		p.head = pc.next
	}
	if pc.next != nil {
		pc.next.prev = pc.prev
	} else {
		p.tail = pc.prev
	}
	pc.prev, pc.next = nil, nil
	p.n--
	if p.perIP[pc.ip]--; p.perIP[pc.ip] <= 0 {
		delete(p.perIP, pc.ip)
	}
}

// count returns the sockets listed.
func (p *pending) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// unlist takes pc out of the list; once is enough, more are no-ops.
func (pc *pendingConn) unlist() {
	pc.p.mu.Lock()
	pc.p.unlistLocked(pc)
	pc.p.mu.Unlock()
}

// Close closes the socket and takes it out of the list.
func (pc *pendingConn) Close() error {
	pc.unlist()
	return pc.Conn.Close()
}

// upgraded takes the socket under c (a pendingConn, perhaps inside TLS
// or handed to net/http by route)
// out of the pending list, as it is a WebSocket now, under MaxConns, and
// returns the connection the gateway keeps: the bare socket for a bare
// pendingConn, so that sockfd.Detach finds its file descriptor and
// net.Buffers writes with one writev (both need the *net.TCPConn itself);
// c unchanged inside TLS, whose records are written whole anyway.
func upgraded(c net.Conn) net.Conn {
	if rc, ok := c.(*replayConn); ok && len(rc.read) == 0 {
		c = rc.Conn // net/http has read what route had read (upgrade.go)
	}
	inner := c
	if tc, ok := c.(*tls.Conn); ok {
		inner = tc.NetConn()
	}
	pc, ok := inner.(*pendingConn)
	if !ok {
		return c
	}
	pc.unlist()
	if inner == c {
		return pc.Conn
	}
	return c
}

// peerIP returns the address a socket comes from (unmapped), or the zero
// address for a socket that is not IP.
func peerIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// pendingListener lists every socket it accepts in pending.
type pendingListener struct {
	net.Listener
	p *pending
}

func (l pendingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if pc := l.p.admit(c); pc != nil {
			return pc, nil
		}
	}
}
