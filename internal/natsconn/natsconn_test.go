package natsconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
	nc, err := Connect(Config{URL: url, User: "u", PasswordFile: writeFile(t, "pw", "s3cret-pw\n")}, "test")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	_, err = Connect(Config{URL: url, User: "u", PasswordFile: writeFile(t, "pw", "wrong")}, "test")
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	// A password in the URL never shows in an error.
	_, err = Connect(Config{URL: strings.Replace(url, "nats://", "nats://u:hunter2-pw@", 1) + ",nats://127.0.0.1:1"}, "test")
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
	nc, err := Connect(Config{URL: url, NKeySeedFile: writeFile(t, "seed.nk", string(seed))}, "test")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if _, err := Connect(Config{URL: url}, "test"); err == nil {
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
	nc, err := Connect(Config{URL: url, TLSCA: caFile, TLSCert: certFile, TLSKey: keyFile}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !nc.TLSRequired() {
		t.Fatal("not on TLS")
	}
	nc.Close()
	if _, err := Connect(Config{URL: url, TLSCA: caFile}, "test"); err == nil {
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
