package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct client", "203.0.113.7:5000", "", "203.0.113.7"},
		{"direct client lying in X-Forwarded-For", "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"through a trusted proxy", "10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},
		{"client-written hops left of the real one are ignored", "10.1.2.3:5000", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
		{"two trusted proxies", "10.1.2.3:5000", "198.51.100.1, 10.9.9.9", "198.51.100.1"},
		{"trusted proxy without the header", "10.1.2.3:5000", "", "10.1.2.3"},
		{"garbage in the header", "10.1.2.3:5000", "not-an-ip", "10.1.2.3"},
		{"IPv4-mapped IPv6", "[::ffff:203.0.113.7]:5000", "", "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := clientIP(r, trusted); got.String() != tt.want {
				t.Fatalf("clientIP = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestIPLimits(t *testing.T) {
	now := time.Unix(1000, 0)
	ip := netip.MustParseAddr("192.0.2.1")
	l := newIPLimits(2, 1, 2)
	if !l.admit(ip, now) || !l.admit(ip, now) || l.admit(ip, now) {
		t.Fatal("want 2 connections, then a refusal")
	}
	l.release(ip)
	if l.admit(ip, now) {
		t.Fatal("a freed slot, but no upgrade token left")
	}
	if !l.admit(ip, now.Add(time.Second)) {
		t.Fatal("a token refilled after 1s")
	}
	l.release(ip)
	l.release(ip)
	l.sweep(now.Add(time.Minute))
	if len(l.ips) != 0 {
		t.Fatalf("sweep kept %d idle addresses", len(l.ips))
	}
	unlimited := newIPLimits(-1, -1, 0)
	for range 1000 {
		if !unlimited.admit(ip, now) {
			t.Fatal("refused with no caps")
		}
	}
}

// FuzzClientIP: whatever X-Forwarded-For says, a client that is not a
// trusted proxy is its own address, and the address found is never a
// trusted proxy unless the peer itself is the only one there is.
func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.7:5000", "198.51.100.1")
	f.Add("10.1.2.3:5000", "1.1.1.1, 10.9.9.9")
	f.Add("10.1.2.3:5000", ",,,")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := clientIP(r, trusted)
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		peer, err := netip.ParseAddr(host)
		if err != nil {
			if got.IsValid() {
				t.Fatalf("unparsable peer %q gave %v", remote, got)
			}
			return
		}
		peer = peer.Unmap()
		if !isTrusted(peer, trusted) && got != peer {
			t.Fatalf("untrusted peer %v reported as %v", peer, got)
		}
		if isTrusted(got, trusted) && got != peer {
			t.Fatalf("a trusted proxy %v reported as the client", got)
		}
	})
}
