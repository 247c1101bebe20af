package ceiling

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// workerEnv makes the test binary a ceiling child process: the runs below
// re-execute it as their WorkerCommand.
const workerEnv = "LIVEIM_CEILING_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := RunWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling-worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// needsLinux skips a test where liveim ceiling cannot run.
func needsLinux(t *testing.T) {
	t.Helper()
	if err := supported(); err != nil {
		t.Skip(err)
	}
}

// testConfig is a small, short run whose children are this test binary.
func testConfig(kind string) Config {
	return Config{
		Kind:          kind,
		Members:       200,
		Rate:          50,
		Duration:      time.Second,
		Drain:         20 * time.Second,
		SourceAddrs:   4,
		WorkerCommand: []string{os.Args[0]},
		WorkerEnv:     []string{workerEnv + "=1"},
	}
}

// checkFanout checks every member got every message.
func checkFanout(t *testing.T, res Result, err error, members int) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.ConnectErrors != 0 || res.Connected != members {
		t.Fatalf("connected %d of %d (%d errors)", res.Connected, members, res.ConnectErrors)
	}
	if res.Messages != 50 {
		t.Fatalf("sent %d messages, want 50", res.Messages)
	}
	if want := int64(members) * res.Messages; res.Expected != want || res.Deliveries != want || res.Missing != 0 {
		t.Fatalf("deliveries %d, expected %d, missing %d; want %d", res.Deliveries, res.Expected, res.Missing, want)
	}
	if res.DeliveriesPerSec <= 0 || res.ServerCPUSeconds < 0 || res.P50Ms <= 0 || res.P999Ms < res.P50Ms {
		t.Fatalf("implausible figures: %+v", res)
	}
}

func TestNATSFanout(t *testing.T) {
	needsLinux(t)
	res, err := NATSFanout(t.Context(), testConfig(KindNATSFanout))
	checkFanout(t, res, err, 200)
}

// TestNATSFanoutCluster spreads members over a two-server NATS cluster
// and two workers: the publisher's server reaches half of them over a
// route.
func TestNATSFanoutCluster(t *testing.T) {
	needsLinux(t)
	cfg := testConfig(KindNATSFanout)
	cfg.Members, cfg.Servers, cfg.PerWorker = 101, 2, 60
	res, err := NATSFanout(t.Context(), cfg)
	checkFanout(t, res, err, 101)
	if res.Servers != 2 || res.Workers != 2 {
		t.Fatalf("servers %d workers %d, want 2 and 2", res.Servers, res.Workers)
	}
}

func TestWSBroadcast(t *testing.T) {
	needsLinux(t)
	cfg := testConfig(KindWSBroadcast)
	cfg.Servers, cfg.PerWorker = 2, 120
	res, err := WSBroadcast(t.Context(), cfg)
	checkFanout(t, res, err, 200)
}

func TestWSEcho(t *testing.T) {
	needsLinux(t)
	cfg := testConfig(KindWSEcho)
	cfg.Members = 50
	res, err := WSEcho(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Connected != 50 || res.ConnectErrors != 0 {
		t.Fatalf("connected %d of 50", res.Connected)
	}
	if res.Messages < 50 || res.Deliveries != res.Messages || res.Missing != 0 {
		t.Fatalf("sent %d frames, %d echoed", res.Messages, res.Deliveries)
	}
}

func TestRunPrints(t *testing.T) {
	needsLinux(t)
	cfg := testConfig(KindWSBroadcast)
	cfg.Members, cfg.JSON = 10, true
	var out bytes.Buffer
	if err := Run(t.Context(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"deliveries":500`) {
		t.Fatalf("output %s", out.String())
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Kind: "bogus"}, {Members: -1}, {PerWorker: 20000}, {Members: 40000, Servers: 1}, {Payload: 10}} {
		if c.Validate() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{Members: 20000}).Validate(); err != nil {
		t.Errorf("20000 members: %v", err)
	}
	if d := (Config{Members: 20000}).withDefaults(); d.Servers != 2 || d.workers() != 2 {
		t.Errorf("20000 members: %d servers, %d workers; want 2 and 2", d.Servers, d.workers())
	}
}

func TestNATSOp(t *testing.T) {
	in := []byte("INFO {\"x\":1}\r\nPING\r\nMSG room 1 5\r\nhello\r\nMSG room 1 reply 3\r\nab")
	var ops []int
	var payloads []string
	for {
		op, p, used, err := natsOp(in)
		if err != nil {
			t.Fatal(err)
		}
		if used == 0 {
			break
		}
		ops, in = append(ops, op), in[used:]
		if op == opMsg {
			payloads = append(payloads, string(p))
		}
	}
	if fmt.Sprint(ops) != fmt.Sprint([]int{opInfo, opPing, opMsg}) || fmt.Sprint(payloads) != "[hello]" {
		t.Fatalf("ops %v payloads %v", ops, payloads)
	}
	if string(in) != "MSG room 1 reply 3\r\nab" {
		t.Fatalf("rest %q", in)
	}
	if _, _, _, err := natsOp([]byte("BOGUS\r\n")); err == nil {
		t.Fatal("no error for an unknown operation")
	}
}

func TestFrames(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 300, 70000} {
		payload := bytes.Repeat([]byte{'z'}, n)
		for _, key := range []*[4]byte{nil, {1, 2, 3, 4}} {
			b := appendFrame(nil, opBinary, payload, key)
			if _, used, _ := parseFrame(b[:len(b)-1]); used != 0 && n > 0 {
				t.Fatalf("n=%d: parsed a short frame", n)
			}
			f, used, err := parseFrame(append(b, 0x82))
			if err != nil || used != len(b) || f.op != opBinary || !bytes.Equal(f.payload, payload) {
				t.Fatalf("n=%d masked=%v: used %d of %d, err %v", n, key != nil, used, len(b), err)
			}
		}
	}
}

func TestStamp(t *testing.T) {
	p := stampPayload(make([]byte, 100), 1234567890123456789)
	if s, probe := parseStamp(p); probe || s != 1234567890123456789 || len(p) != 100 {
		t.Fatalf("stamp %d probe %v", s, probe)
	}
	if _, probe := parseStamp(probePayload(100)); !probe {
		t.Fatal("probe not recognized")
	}
}
