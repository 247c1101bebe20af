package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/bench/latency"
	"github.com/liveim/liveim/proto/liveimpb"
)

// job is what a worker process is told on its stdin.
type job struct {
	URLs     []string `json:"urls"`
	AppID    string   `json:"app_id"`
	AppKey   string   `json:"app_key"`
	First    int      `json:"first"` // index of the first user
	Count    int      `json:"count"`
	Rooms    int      `json:"rooms"`
	Dialers  int      `json:"dialers"`   // clients connecting at once
	SourceIP int      `json:"source_ip"` // first loopback source address, 127.0.0.N
	// NoJoin: clients only log in (the connect scenario's login storm).
	NoJoin bool `json:"no_join"`
	// Read makes the worker read its sockets (fanout) instead of leaving
	// them idle; it then answers "report" on stdin with a readStats line.
	Read bool `json:"read"`
	// ReadInterval makes a reading worker read each socket at most once
	// per interval (Config.ReadInterval).
	ReadInterval time.Duration `json:"read_interval"`
}

// readStats is a reading worker's answer to "report".
type readStats struct {
	Normal        int64        `json:"normal"`
	High          int64        `json:"high"`
	HighDups      int64        `json:"high_dups"`
	C2C           int64        `json:"c2c"`
	Replies       int64        `json:"replies"`
	Rejected      int64        `json:"rejected"`
	RejectedHigh  int64        `json:"rejected_high"` // of Rejected, HIGH sends
	FirstRejected string       `json:"first_rejected,omitempty"`
	Hist          latency.Hist `json:"hist"`
}

// report is a worker's one line on stdout once its clients are in.
type report struct {
	Connected int     `json:"connected"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"`
	// Retries counts logins and joins tried again after a 503, as the
	// SDK does.
	Retries int `json:"retries"`
}

// RunWorker is `liveim bench-worker`: it reads a job from in, connects
// and logs in its clients, joins each to a room, writes a report to out,
// and holds the connections, idle and goroutine-free, until in closes. It
// needs Linux.
func RunWorker(in io.Reader, out io.Writer) error {
	if err := supported(); err != nil {
		return err
	}
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("bench-worker: read job: %w", err)
	}
	var j job
	if err := json.Unmarshal(line, &j); err != nil {
		return fmt.Errorf("bench-worker: job: %w", err)
	}
	conns := make([]net.Conn, j.Count)
	var errs, retries atomic.Int64
	var firstErr atomic.Value
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range max(j.Dialers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= j.Count {
					return
				}
				c, err := connect(j, j.First+i, &retries)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	rep := report{Connected: j.Count - int(errs.Load()), Errors: int(errs.Load()), Seconds: time.Since(start).Seconds(), Retries: int(retries.Load())}
	if e, ok := firstErr.Load().(string); ok {
		rep.FirstErr = e
	}
	var reader *fanoutReader
	stop := make(chan struct{})
	defer close(stop)
	if j.Read {
		if reader, err = newFanoutReader(); err != nil {
			return err
		}
		for i, c := range conns {
			if c != nil {
				if err := reader.add(c, j.First+i); err != nil {
					return err
				}
				conns[i] = nil // the reader owns the socket now
			}
		}
		go reader.run(stop, j.ReadInterval)
	}
	b, _ := json.Marshal(rep)
	if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
		return err
	}
	go keepAlive(conns, reader, stop)
	for { // hold until the parent closes stdin; answer reports meanwhile
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		var answer any
		switch {
		case reader == nil:
			continue
		case cmd == "report":
			reader.mu.Lock()
			answer = readStats{Normal: reader.normal, High: reader.high, HighDups: reader.highDups, C2C: reader.c2c,
				Replies: reader.replies, Rejected: reader.rejected, RejectedHigh: reader.rejectedHigh, FirstRejected: reader.firstRej, Hist: slices.Clone(reader.hist)}
			reader.mu.Unlock()
		case cmd == "send":
			var sj sendJob
			if err := json.Unmarshal([]byte(arg), &sj); err != nil {
				return fmt.Errorf("bench-worker: send job: %w", err)
			}
			answer = reader.send(sj)
		default:
			continue
		}
		b, _ := json.Marshal(answer)
		if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
			return err
		}
	}
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
	return nil
}

// connect dials, logs user n in and joins its room; the connection is
// then left idle with nothing reading it. A login or join answered 503
// (a router busy or taking a partition over) is tried again after a
// backoff, as the SDK does, and counted in retries.
func connect(j job, n int, retries *atomic.Int64) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(j.SourceIP+n%200))}
	d := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{LocalAddr: src}).DialContext(ctx, network, addr)
	}}
	conn, br, _, err := d.Dial(ctx, j.URLs[n%len(j.URLs)])
	if err != nil {
		return nil, err
	}
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	user := "bench-" + strconv.Itoa(n)
	cred := auth.Issue(j.AppID, j.AppKey, user, "", auth.NewNonce(auth.DefaultNonceLength), 24*time.Hour, time.Now())
	frames := []*liveimpb.ClientFrame{
		{Id: 1, Body: &liveimpb.ClientFrame_Login{Login: &liveimpb.LoginRequest{
			AppId: j.AppID, User: &liveimpb.User{UserId: user}, HeartbeatTimeout: 120,
			Auth: &liveimpb.UserAuth{Timestamp: cred.Timestamp, Nonce: cred.Nonce, Token: cred.Token},
		}}},
		{Id: 2, Body: &liveimpb.ClientFrame_JoinGroup{JoinGroup: &liveimpb.JoinGroupRequest{GroupId: roomName(n % j.Rooms)}}},
	}
	if j.NoJoin {
		frames = frames[:1]
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	for _, f := range frames {
		backoff := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			err := roundTrip(conn, rd, f)
			if err == nil {
				break
			}
			if !errors.Is(err, liveimpb.ErrUnavailable) || attempt == 6 {
				conn.Close()
				return nil, err
			}
			retries.Add(1)
			time.Sleep(backoff)
			backoff = min(2*backoff, 3*time.Second)
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// roundTrip writes f and reads frames until its reply.
func roundTrip(conn net.Conn, rd io.Reader, f *liveimpb.ClientFrame) error {
	b, err := proto.Marshal(f)
	if err != nil {
		return err
	}
	if err := wsutil.WriteClientBinary(conn, b); err != nil {
		return err
	}
	rw := struct {
		io.Reader
		io.Writer
	}{rd, conn}
	for {
		data, err := wsutil.ReadServerBinary(rw)
		if err != nil {
			return err
		}
		var sf liveimpb.ServerFrame
		if err := proto.Unmarshal(data, &sf); err != nil {
			return err
		}
		if rep := sf.GetReply(); rep != nil && rep.Id == f.Id {
			return liveimpb.ReplyError(rep)
		}
	}
}

func roomName(i int) string { return "bench-room-" + strconv.Itoa(i) }

// pingEvery is how often a worker pings each of its sessions, as apps'
// clients do (every 25 s): well inside the 120 s heartbeat timeout its
// clients ask for at login. The pings are spread over the interval, as
// real clients' are, not sent in one burst.
const pingEvery = 25 * time.Second

// pingSteps is how many slices of its sessions a worker pings per
// interval.
const pingSteps = 100

// keepAlive pings every session of the worker until stop closes, so a
// long run (hundreds of thousands of logins) does not see its first
// sessions closed for silence. Idle workers never read the pongs: a few
// bytes each per ping stay in the socket buffers.
func keepAlive(conns []net.Conn, reader *fanoutReader, stop <-chan struct{}) {
	ping, _ := proto.Marshal(&liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_Ping{Ping: &liveimpb.PingRequest{}}})
	frame := maskedFrame(ping)
	t := time.NewTicker(pingEvery / pingSteps)
	defer t.Stop()
	for step := 0; ; step = (step + 1) % pingSteps {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// The step-th slice of the sessions: i with i % pingSteps == step.
		for i := step; i < len(conns); i += pingSteps {
			if c := conns[i]; c != nil {
				_, _ = c.Write(frame)
			}
		}
		if reader != nil {
			reader.mu.Lock()
			fds := make([]int, 0, len(reader.conns)/pingSteps+1)
			for fd, mc := range reader.conns {
				if int(fd)%pingSteps == step {
					fds = append(fds, mc.fd)
				}
			}
			reader.mu.Unlock()
			for _, fd := range fds {
				_, _ = writeFD(fd, frame)
			}
		}
	}
}
