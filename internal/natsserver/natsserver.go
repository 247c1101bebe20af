// Package natsserver runs nats-server in-process with JetStream, for
// `liveim serve` and for tests.
package natsserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures the embedded server.
type Config struct {
	// Dir holds JetStream data. Required.
	Dir string
	// Host to listen on. Default "127.0.0.1".
	Host string
	// Port to listen on; -1 picks a free port. Default -1.
	Port int
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
	s, err := server.NewServer(&server.Options{
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
	})
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
