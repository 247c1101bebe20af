package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/proto/liveimpb"
)

// upgradeRequest is a client's WebSocket upgrade on path.
func upgradeRequest(path string, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawExchange writes req on a new socket to addr and reads one response.
func rawExchange(t *testing.T, addr net.Addr, req string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	return resp, c, br
}

// pingFrame is a client's masked ping request.
func pingFrame(t *testing.T, id uint32) []byte {
	t.Helper()
	b, _ := proto.Marshal(&liveimpb.ClientFrame{Id: id, Body: &liveimpb.ClientFrame_Ping{Ping: &liveimpb.PingRequest{}}})
	var buf bytes.Buffer
	if err := wsutil.WriteClientBinary(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readPong reads the pong of request id.
func readPong(t *testing.T, r io.Reader, id uint32) {
	t.Helper()
	data, err := wsutil.ReadServerBinary(struct {
		io.Reader
		io.Writer
	}{r, io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var sf liveimpb.ServerFrame
	if err := proto.Unmarshal(data, &sf); err != nil || sf.GetReply().GetId() != id || sf.GetReply().GetPong() == nil {
		t.Fatalf("reply %v (%v), want the pong of request %d", &sf, err, id)
	}
}

// TestUpgradeRouting: a gateway answers WebSocket upgrades itself and
// hands every other request to net/http (upgrade.go). What a client sees
// must not tell the two apart: upgrades with a frame in the same packet,
// refusals with their status and Retry-After, bad requests, the other
// routes, keep-alive, and an upgrade that comes after another request on
// the same connection (net/http serves that one).
func TestUpgradeRouting(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		if path == pathPortableTLS {
			t.Skip("under TLS net/http serves every request, as TestTLS shows")
		}
		g, addr, _ := runGateway(t, Config{IO: path, UpgradeRatePerIP: 0.001, UpgradeBurstPerIP: 3, MaxConnsPerIP: -1})

		t.Run("frame in the upgrade's packet", func(t *testing.T) {
			// The ping is written with the request, before the 101 is read:
			// the bytes read past the request must reach the connection.
			resp, _, br := rawExchange(t, addr, upgradeRequest("/ws?v=1", "")+string(pingFrame(t, 7)))
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Fatalf("upgrade: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
			}
			readPong(t, br, 7)
		})

		t.Run("other routes and keep-alive, then an upgrade on the same connection", func(t *testing.T) {
			resp, c, br := rawExchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz: %s %q", resp.Status, body)
			}
			if _, err := io.WriteString(c, "GET /wsx HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusNotFound {
				t.Fatalf("/wsx on the kept-alive connection: %v, %v; want 404", resp, err)
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			if _, err := io.WriteString(c, upgradeRequest("/ws", "")); err != nil {
				t.Fatal(err)
			}
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade on the kept-alive connection: %v, %v", resp, err)
			}
			if _, err := c.Write(pingFrame(t, 8)); err != nil {
				t.Fatal(err)
			}
			readPong(t, br, 8)
		})

		t.Run("a bad upgrade is answered 400, headers over the limit 431", func(t *testing.T) {
			resp, _, _ := rawExchange(t, addr, "GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("no Sec-WebSocket-Key: %s, want 400", resp.Status)
			}
			resp, _, _ = rawExchange(t, addr, "GET /ws HTTP/1.1\r\nno colon here\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("malformed header: %s, want 400", resp.Status)
			}
			big := "X-Big: " + strings.Repeat("a", http.DefaultMaxHeaderBytes) + "\r\n"
			resp, _, _ = rawExchange(t, addr, upgradeRequest("/ws", big))
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("headers over %d bytes: %s, want 431", http.DefaultMaxHeaderBytes, resp.Status)
			}
		})

		t.Run("refused: over the address's upgrades, and draining", func(t *testing.T) {
			// Burst 3: the upgrade with a frame in its packet, the one on
			// the kept-alive connection and the one without a key took them.
			resp, c, _ := rawExchange(t, addr, upgradeRequest("/ws", ""))
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("over the upgrade burst: %s, Retry-After %q; want 429 and 1", resp.Status, resp.Header.Get("Retry-After"))
			}
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("a refused upgrade's connection: read %v, want it closed", err)
			}
			g.draining.Store(true)
			defer g.draining.Store(false)
			resp, _, _ = rawExchange(t, addr, upgradeRequest("/ws", ""))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("draining: %s, want 503", resp.Status)
			}
		})

		waitFor(t, 10*time.Second, func() error {
			if n := g.pending.count(); n != 0 {
				return fmt.Errorf("%d sockets still listed as pending", n)
			}
			return nil
		})
	})
}
