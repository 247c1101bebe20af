package natsconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func runServer(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswordFile(t *testing.T) {
	url := runServer(t, &server.Options{Users: []*server.User{{Username: "u", Password: "s3cret-pw"}}})
	nc, err := Connect(context.Background(), Config{URL: url, User: "u", PasswordFile: writeFile(t, "pw", "s3cret-pw\n")}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	_, err = Connect(context.Background(), Config{URL: url, User: "u", PasswordFile: writeFile(t, "pw", "wrong")}, "test", nil)
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	// A password in the URL never shows in an error.
	_, err = Connect(context.Background(), Config{URL: strings.Replace(url, "nats://", "nats://u:hunter2-pw@", 1) + ",nats://127.0.0.1:1"}, "test", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2-pw") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error %v shows a password", err)
	}
}

func TestNKey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	url := runServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	nc, err := Connect(context.Background(), Config{URL: url, NKeySeedFile: writeFile(t, "seed.nk", string(seed))}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if _, err := Connect(context.Background(), Config{URL: url}, "test", nil); err == nil {
		t.Fatal("connected without the nkey")
	}
}

// TestMutualTLS: the client verifies the server against --nats-tls-ca and
// presents --nats-tls-cert; without them it cannot connect.
func TestMutualTLS(t *testing.T) {
	ca, caKey := newCert(t, nil, nil, true)
	srv, srvKey := newCert(t, ca, caKey, false)
	cli, cliKey := newCert(t, ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	url := runServer(t, &server.Options{
		TLS: true, TLSVerify: true, TLSTimeout: 5,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
			ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
	})
	caFile := writeFile(t, "ca.pem", pemOf("CERTIFICATE", ca.Raw))
	certFile, keyFile := writeFile(t, "cli.pem", pemOf("CERTIFICATE", cli.Raw)), writeFile(t, "cli.key", keyPEM(t, cliKey))
	nc, err := Connect(context.Background(), Config{URL: url, TLSCA: caFile, TLSCert: certFile, TLSKey: keyFile}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !nc.TLSRequired() {
		t.Fatal("not on TLS")
	}
	nc.Close()
	if _, err := Connect(context.Background(), Config{URL: url, TLSCA: caFile}, "test", nil); err == nil {
		t.Fatal("connected without a client certificate")
	}
}

func TestValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"user without password": {User: "u"},
		"password without user": {PasswordFile: "f"},
		"two methods":           {User: "u", PasswordFile: "f", NKeySeedFile: "k"},
		"cert without key":      {TLSCert: "c"},
		"port not a number":     {URL: "nats://a:4222,nats://b:42x2"},
		"port out of range":     {URL: "nats://a:70000"},
		"no host":               {URL: "nats://:4222"},
	} {
		if c.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
	for _, url := range []string{"", "nats://a:4222, nats://b:4222", "127.0.0.1:4222", "tls://u:pw@h", "ws://h:8080"} {
		if err := (Config{URL: url}).Validate(); err != nil {
			t.Errorf("%q: %v", url, err)
		}
	}
	// A URL that does not parse is named by its place, not shown: it may
	// hold a password.
	if err := (Config{URL: "nats://u:secret@h:4222,nats://u:secret@h:x"}).Validate(); err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "URL 2") {
		t.Errorf("unparsable URL with a password: %v", err)
	}
}

func TestRedact(t *testing.T) {
	got := Redact("nats://u:pw@h1:4222, nats://tok@h2:4222,nats://h3:4222")
	if strings.Contains(got, "pw@") || strings.Contains(got, "tok@") || !strings.Contains(got, "h3:4222") {
		t.Fatalf("Redact = %q", got)
	}
}

func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "liveim test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func pemOf(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) string {
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("EC PRIVATE KEY", b)
}

// logRecorder is a slog handler that keeps the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how often msg was logged.
func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// waitFor polls cond until it returns nil, failing the test with its last
// error after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logged(rec *logRecorder, msg string, n int) func() error {
	return func() error {
		if got := rec.count(msg); got < n {
			return fmt.Errorf("%q logged %d times, want %d", msg, got, n)
		}
		return nil
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startAt(t *testing.T, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestRetryOnFailedConnect: a component that starts before NATS waits for
// it instead of failing; once connected, it logs a lost server and its
// reconnection.
func TestRetryOnFailedConnect(t *testing.T) {
	port := freePort(t)
	rec := &logRecorder{}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := Connect(context.Background(), Config{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), ConnectWait: time.Minute}, "test", slog.New(rec),
			nats.ReconnectWait(50*time.Millisecond))
		done <- result{nc, err}
	}()
	waitFor(t, 10*time.Second, logged(rec, "NATS not reachable; retrying", 1))
	srv := startAt(t, port)
	var nc *nats.Conn
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		nc = r.nc
	case <-time.After(30 * time.Second):
		t.Fatal("Connect did not return after the server started")
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatalf("Connect returned a connection in state %v", nc.Status())
	}
	waitFor(t, 10*time.Second, logged(rec, "NATS connected", 1))

	srv.Shutdown()
	waitFor(t, 10*time.Second, logged(rec, "NATS disconnected; reconnecting", 1))
	startAt(t, port)
	waitFor(t, 30*time.Second, logged(rec, "NATS reconnected", 1))
	if !nc.IsConnected() {
		t.Fatalf("reconnected, yet in state %v", nc.Status())
	}
}

// TestConnectWaitBounded: with no server at all, Connect gives up after
// ConnectWait, or when its context ends, and says why.
func TestConnectWaitBounded(t *testing.T) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	_, err := Connect(context.Background(), Config{URL: url, ConnectWait: 200 * time.Millisecond}, "test", nil, nats.ReconnectWait(20*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "no server reachable within 200ms") {
		t.Fatalf("Connect = %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(ctx, Config{URL: url, ConnectWait: time.Hour}, "test", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect with an ended context = %v", err)
	}
}
