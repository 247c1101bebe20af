package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseFlagsPrecedence: command line over environment over config
// file over default; an unknown name in the file is an error.
func TestParseFlagsPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "liveim.yaml")
	if err := os.WriteFile(file, []byte("# gateway settings\naddr: 0.0.0.0:9000\nnats: \"nats://a:4222,nats://b:4222\"\nloops = 3\nsend-rate: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIVEIM_LOOPS", "5")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "")
	natsURL := fs.String("nats", "", "")
	loops := fs.Int("loops", 0, "")
	rate := fs.Float64("send-rate", 0, "")
	other := fs.String("other", "default", "")
	if err := parseFlags(fs, []string{"--config", file, "--send-rate", "9"}); err != nil {
		t.Fatal(err)
	}
	if *addr != "0.0.0.0:9000" || *natsURL != "nats://a:4222,nats://b:4222" || *loops != 5 || *rate != 9 || *other != "default" {
		t.Fatalf("addr %q nats %q loops %d rate %v other %q", *addr, *natsURL, *loops, *rate, *other)
	}

	if err := os.WriteFile(file, []byte("no-such-flag: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("addr", "", "")
	if err := parseFlags(fs, []string{"--config", file}); err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("unknown flag in file: %v", err)
	}
}
