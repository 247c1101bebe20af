package gateway

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestPendingFileBudget: sockets not yet upgraded and WebSockets together
// stay within MaxConns plus pendingFiles, whatever MaxPending says, so a
// gateway full of WebSockets can still not be pushed out of files by
// sockets that never finish their request: the oldest is closed instead.
func TestPendingFileBudget(t *testing.T) {
	m := &Metrics{}
	m.connections.Store(100) // WebSockets held
	p := newPending(Config{MaxPending: -1, MaxPendingPerIP: -1, MaxConns: 3}, nil, m)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	ln := pendingListener{Listener: tcp, p: p}
	budget := 3 + pendingFiles - 100
	var clients, servers []net.Conn
	for range budget + 1 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers = append(servers, s)
	}
	if n := p.count(); n != budget {
		t.Fatalf("%d sockets pending, want the budget %d", n, budget)
	}
	if n := m.pendingOldest.Load(); n != 1 {
		t.Fatalf("%d closed as oldest, want 1", n)
	}
	_ = clients[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := clients[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("oldest socket: read %v, want EOF (closed by the gateway)", err)
	}
	// Closing a socket or upgrading it takes it off the list, once.
	_ = servers[1].Close()
	_ = servers[1].Close()
	bare := upgraded(servers[2])
	if _, ok := bare.(*net.TCPConn); !ok {
		t.Fatalf("upgraded returned a %T, want the *net.TCPConn under it (writev, Detach)", bare)
	}
	_ = servers[2].Close()
	if n := p.count(); n != budget-2 {
		t.Fatalf("%d sockets pending after one closed and one upgraded, want %d", n, budget-2)
	}
	if len(p.perIP) != 1 || p.perIP[peerIP(servers[3])] != budget-2 {
		t.Fatalf("per address: %v, want %d for the one address", p.perIP, budget-2)
	}
}

// BenchmarkAccept is a socket's dial, accept and close on loopback, bare
// and through the pending list (pendingListener, then upgraded): what the
// list adds to every connection.
func BenchmarkAccept(b *testing.B) {
	for _, listed := range []bool{false, true} {
		b.Run(map[bool]string{false: "bare", true: "pending"}[listed], func(b *testing.B) {
			tcp, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer tcp.Close()
			var ln net.Listener = tcp
			if listed {
				ln = pendingListener{Listener: tcp, p: newPending(Config{MaxPending: 4096, MaxPendingPerIP: 256, MaxConns: 19744}, nil, &Metrics{})}
			}
			for b.Loop() {
				c, err := net.Dial("tcp", tcp.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				s, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				_ = upgraded(s).Close()
				_ = c.Close()
			}
		})
	}
}
