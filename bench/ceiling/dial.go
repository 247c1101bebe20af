package ceiling

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/liveim/liveim/internal/sockfd"
)

// handshakeTimeout bounds a client's connect and handshake.
const handshakeTimeout = 30 * time.Second

// natsHello connects without verbose acks, subscribes to the room with
// sid 1, and asks for a PONG, which comes once the subscription is in.
const natsHello = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB room 1\r\nPING\r\n"

// natsSubject is the one subject of a nats-fanout run.
const natsSubject = "room"

// dialFrom connects to addr from the loopback address src.
func dialFrom(addr string, src net.IP) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: handshakeTimeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ceiling: dial %s from %s: %w", addr, src, err)
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	return conn, nil
}

// dialNATS connects a raw subscriber to the nats-server at addr and waits
// for the PONG that confirms its subscription. It returns the socket,
// taken out of Go's netpoller, and any bytes read past the PONG.
func dialNATS(addr string, src net.IP) (int, []byte, error) {
	return handshake(addr, src, natsHello, awaitPong)
}

// handshake dials addr from src, writes hello and waits with await for
// the server's answer. It returns the socket, taken out of Go's
// netpoller, and any bytes await read past the answer.
func handshake(addr string, src net.IP, hello string, await func(io.Reader) ([]byte, error)) (int, []byte, error) {
	conn, err := dialFrom(addr, src)
	if err != nil {
		return -1, nil, err
	}
	if _, err := io.WriteString(conn, hello); err != nil {
		conn.Close()
		return -1, nil, fmt.Errorf("ceiling: handshake with %s: %w", addr, err)
	}
	rest, err := await(conn)
	if err != nil {
		conn.Close()
		return -1, nil, err
	}
	fd, err := sockfd.Detach(conn)
	if err != nil {
		return -1, nil, fmt.Errorf("ceiling: detach: %w", err)
	}
	return fd, rest, nil
}

// awaitPong reads protocol operations until a PONG.
func awaitPong(r io.Reader) ([]byte, error) {
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		for {
			op, line, used, err := natsOp(buf)
			if err != nil {
				return nil, err
			}
			if used == 0 {
				break
			}
			buf = buf[used:]
			switch op {
			case opPong:
				return buf, nil
			case opErr:
				return nil, fmt.Errorf("ceiling: nats-server: %s", line)
			}
		}
		n, err := r.Read(tmp)
		if err != nil {
			return nil, fmt.Errorf("ceiling: nats handshake: %w", err)
		}
		buf = append(buf, tmp[:n]...)
	}
}

// dialWS connects a WebSocket client to the server at addr, writing the
// upgrade request by hand. It returns the socket, taken out of Go's
// netpoller, and any bytes read past the response.
func dialWS(addr string, src net.IP) (int, []byte, error) {
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	return handshake(addr, src, req, awaitUpgrade)
}

// awaitUpgrade reads the HTTP response to an upgrade request and checks
// it is 101 Switching Protocols.
func awaitUpgrade(r io.Reader) ([]byte, error) {
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101 ")) {
				line, _, _ := bytes.Cut(buf, crlf)
				return nil, fmt.Errorf("ceiling: upgrade refused: %q", line)
			}
			return buf[i+4:], nil
		}
		if len(buf) > 8192 {
			return nil, fmt.Errorf("ceiling: upgrade response too long")
		}
		n, err := r.Read(tmp)
		if err != nil {
			return nil, fmt.Errorf("ceiling: upgrade response: %w", err)
		}
		buf = append(buf, tmp[:n]...)
	}
}
