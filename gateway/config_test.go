package gateway

import (
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestConfigIO: which I/O path a configuration gets, and the ones that
// cannot work.
func TestConfigIO(t *testing.T) {
	defaultIO := IOPortable
	if haveEpoll {
		defaultIO = IOEpoll
	}
	type test struct {
		name    string
		cfg     Config
		want    string // the path WithDefaults picks
		wantErr string // a substring of Validate's error
	}
	tests := []test{
		{name: "default", want: defaultIO},
		{name: "portable asked", cfg: Config{IO: IOPortable}, want: IOPortable},
		{name: "TLS takes portable", cfg: Config{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, want: IOPortable},
		{name: "TLS with portable", cfg: Config{IO: IOPortable, TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, want: IOPortable},
		{name: "TLS with epoll", cfg: Config{IO: IOEpoll, TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, wantErr: "epoll"},
		{name: "certificate without key", cfg: Config{TLSCertFile: "c.pem"}, wantErr: "--tls-key"},
		{name: "key without certificate", cfg: Config{TLSKeyFile: "k.pem"}, wantErr: "--tls-cert"},
		{name: "unknown path", cfg: Config{IO: "kqueue"}, wantErr: `"kqueue"`},
	}
	if haveEpoll {
		tests = append(tests, test{name: "epoll asked", cfg: Config{IO: IOEpoll}, want: IOEpoll})
	} else {
		tests = append(tests, test{name: "epoll without epoll", cfg: Config{IO: IOEpoll}, wantErr: "needs Linux"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() = %v, want an error about %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.cfg.WithDefaults().IO; got != tt.want {
				t.Fatalf("IO %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNewRefusesMissingCertificate: TLS files are read by New, which
// fails with their error rather than serving plain HTTP.
func TestNewRefusesMissingCertificate(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{TLSCertFile: filepath.Join(dir, "none.pem"), TLSKeyFile: filepath.Join(dir, "none.key")}
	if _, err := New(cfg, &nats.Conn{}, nil); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Fatalf("New with missing certificate files: %v", err)
	}
}

// TestApplyGCPercent: a gateway process runs the GC at its GCPercent
// (50 by default), unless the operator set GOGC, which wins.
func TestApplyGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if got := (Config{}).ApplyGCPercent(); got != 50 {
		t.Fatalf("default target %d, want 50", got)
	}
	if got := debug.SetGCPercent(100); got != 50 {
		t.Fatalf("the process runs at %d, want 50", got)
	}
	if got := (Config{GCPercent: 80}).ApplyGCPercent(); got != 80 || debug.SetGCPercent(100) != 80 {
		t.Fatalf("--gc-percent 80: %d", got)
	}
	t.Setenv("GOGC", "200")
	debug.SetGCPercent(200) // what the runtime read from GOGC at start
	if got := (Config{GCPercent: 30}).ApplyGCPercent(); got != 200 || debug.SetGCPercent(200) != 200 {
		t.Fatalf("with GOGC=200 set the target is %d, want 200", got)
	}
}

// TestMaxConnsDefault: by default a gateway holds fewer WebSockets than
// its process may open files, keeping some for NATS, its listener and
// upgrades in flight; a cap that is set, or negative (none), stays.
func TestMaxConnsDefault(t *testing.T) {
	files := openFileLimit()
	got := Config{}.WithDefaults().MaxConns
	switch {
	case files == 0 && got != -1:
		t.Fatalf("no known file limit: MaxConns %d, want -1 (no cap)", got)
	case files > 0 && (got <= 0 || got > files-fileReserve && got > files/2):
		t.Fatalf("open-file limit %d: MaxConns %d, want a positive cap that leaves %d files or half of them", files, got, fileReserve)
	}
	if got := (Config{MaxConns: 7}).WithDefaults().MaxConns; got != 7 {
		t.Fatalf("MaxConns 7 became %d", got)
	}
	if got := (Config{MaxConns: -1}).WithDefaults().MaxConns; got != -1 {
		t.Fatalf("MaxConns -1 (no cap) became %d", got)
	}
}
