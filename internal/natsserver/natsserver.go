// Package natsserver runs nats-server in-process with JetStream, for
// `liveim serve` and for tests.
package natsserver

import (
	"errors"
	"fmt"
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
