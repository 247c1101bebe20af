// Package natsserver runs nats-server in-process with JetStream, for
// `liveim serve` and for tests.
package natsserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/liveim/liveim/internal/subject"
)

// Config configures the embedded server.
type Config struct {
	// Dir holds JetStream data. Required.
	Dir string
	// Host to listen on. Default "127.0.0.1".
	Host string
	// Port to listen on; -1 picks a free port. Default -1.
	Port int
	// Users, when set, are the only clients the server accepts. Default:
	// none, so any client may connect (tests of NATS itself only).
	Users []User
}

// User is a client the server accepts, by name and password.
type User struct {
	Name, Password string
	// Publish and Subscribe list the subjects the user may use; nil
	// allows every subject.
	Publish, Subscribe []string
	// AllowResponses lets the user answer a request it received with one
	// reply, whatever its publish list says.
	AllowResponses bool
}

// Start starts a nats-server with JetStream and waits until it accepts
// connections. Stop it with Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("natsserver: Dir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	opts := &server.Options{
		ServerName: "liveim-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		// fsync every JetStream write: an acknowledged HIGH message must
		// survive a crash (docs/architecture.md, "HIGH messages").
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
	}
	for _, u := range cfg.Users {
		if u.Name == "" || u.Password == "" {
			return nil, errors.New("natsserver: a user needs a name and a password")
		}
		su := &server.User{Username: u.Name, Password: u.Password}
		if u.Publish != nil || u.Subscribe != nil || u.AllowResponses {
			su.Permissions = &server.Permissions{}
			if u.Publish != nil {
				su.Permissions.Publish = &server.SubjectPermission{Allow: u.Publish}
			}
			if u.Subscribe != nil {
				su.Permissions.Subscribe = &server.SubjectPermission{Allow: u.Subscribe}
			}
			if u.AllowResponses {
				su.Permissions.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
			}
		}
		opts.Users = append(opts.Users, su)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsserver: not ready after 10s")
	}
	return s, nil
}

// LiveimUsers returns the two users of a liveim cluster (package subject):
// routers with every permission, gateways with theirs.
func LiveimUsers(routerPassword, gatewayPassword string) []User {
	return []User{
		{Name: subject.RouterUser, Password: routerPassword},
		{Name: subject.GatewayUser, Password: gatewayPassword, Publish: subject.GatewayPublish(), Subscribe: subject.GatewaySubscribe(), AllowResponses: true},
	}
}

// Password files `liveim serve` keeps in its data directory (mode 0600),
// one per user of LiveimUsers; extra gateways read the gateway's with
// --nats-password-file.
const (
	RouterPasswordFile  = "nats-router.password"
	GatewayPasswordFile = "nats-gateway.password"
)

// EnsurePasswords returns the passwords in dir's password files, creating
// each file with a random password the first time.
func EnsurePasswords(dir string) (router, gateway string, err error) {
	get := func(name string) (string, error) {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err == nil {
			if pw := strings.TrimSpace(string(b)); pw != "" {
				return pw, nil
			}
			return "", fmt.Errorf("natsserver: %s is empty", path)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("natsserver: %w", err)
		}
		var k [24]byte
		_, _ = rand.Read(k[:])
		pw := hex.EncodeToString(k[:])
		if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("natsserver: %w", err)
		}
		return pw, nil
	}
	if router, err = get(RouterPasswordFile); err != nil {
		return "", "", err
	}
	gateway, err = get(GatewayPasswordFile)
	return router, gateway, err
}

// AuthorizationConf returns the authorization block of a nats-server
// configuration file with liveim's two users (LiveimUsers): what an
// external NATS cluster needs, and what docs/deploy.md shows.
func AuthorizationConf(routerPassword, gatewayPassword string) string {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range LiveimUsers(routerPassword, gatewayPassword) {
		fmt.Fprintf(&b, "    {user: %q, password: %q", u.Name, u.Password)
		if u.Publish != nil {
			fmt.Fprintf(&b, ",\n     permissions: {\n       publish: {allow: %s}\n       subscribe: {allow: %s}\n       allow_responses: {max: 1, expires: \"1m\"}\n     }",
				quoted(u.Publish), quoted(u.Subscribe))
		}
		b.WriteString("}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
