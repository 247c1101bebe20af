package scylla

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/liveim/liveim/storage"
)

// TestTLS connects over TLS, verifying the server's certificate against
// --scylla-tls-ca, and refuses a server whose certificate another CA
// signed. scripts/cql-test-server serves TLS (optional) on its CQL port
// and prints its CA with `tls-ca`.
func TestTLS(t *testing.T) {
	hosts := cqlHosts(t)
	ca := os.Getenv("LIVEIM_CQL_TLS_CA")
	if ca == "" {
		t.Skip("LIVEIM_CQL_TLS_CA is not set: `scripts/cql-test-server tls-ca` prints it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig(hosts, randomKeyspace())
	cfg.TLSCA = ca
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(); _ = DropKeyspace(context.Background(), cfg) })
	if err := s.PutApp(ctx, storage.App{ID: "tls-app", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if app, err := s.GetApp(ctx, "tls-app"); err != nil || app.Key != "k" {
		t.Fatalf("read back over TLS: %+v, %v", app, err)
	}

	other := testConfig(hosts, randomKeyspace())
	other.TLSCA = otherCA(t)
	other.Timeout = 5 * time.Second
	if s, err := Open(ctx, other, nil); err == nil {
		_ = s.Close()
		t.Fatal("connected to a server whose certificate another CA signed")
	}
}

func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the server's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPasswordFile: the password comes from the file, trimmed, and wins
// over --scylla-password.
func TestPasswordFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := Config{Hosts: []string{"h"}, Username: "liveim", Password: "flag-pw", PasswordFile: p}.WithDefaults().cluster()
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := cl.Authenticator.(gocql.PasswordAuthenticator); !ok || a.Username != "liveim" || a.Password != "s3cret" {
		t.Fatalf("authenticator %+v", cl.Authenticator)
	}
	if _, err := (Config{Hosts: []string{"h"}, Username: "liveim", PasswordFile: filepath.Join(t.TempDir(), "missing")}).cluster(); err == nil {
		t.Fatal("a missing password file was accepted")
	}
	if err := (Config{Hosts: []string{"h"}, PasswordFile: p}).Validate(); err == nil {
		t.Fatal("a password file without a user name was accepted")
	}
}
