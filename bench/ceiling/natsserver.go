package ceiling

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsServer is the nats-server role: a plain core-NATS server, without
// JetStream, alone in its process so its CPU is its own.
type natsServer struct {
	s *server.Server
}

// startNATSServer starts a server on a free loopback port, part of a
// cluster when j asks for routes.
func startNATSServer(j job) (role, status, error) {
	opts := &server.Options{
		Host:   "127.0.0.1",
		Port:   -1,
		NoLog:  true,
		NoSigs: true,
	}
	if j.Cluster || len(j.Routes) > 0 {
		opts.Cluster = server.ClusterOpts{Name: "ceiling", Host: "127.0.0.1", Port: -1}
		opts.Routes = server.RoutesFromStr(strings.Join(j.Routes, ","))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, status{}, fmt.Errorf("ceiling: nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, status{}, errors.New("ceiling: nats-server not ready after 10s")
	}
	st := status{Addr: s.Addr().String()}
	if a := s.ClusterAddr(); a != nil && (j.Cluster || len(j.Routes) > 0) {
		st.ClusterAddr = a.String()
	}
	return &natsServer{s: s}, st, nil
}

func (n *natsServer) handle(cmd string) (status, error) {
	if cmd != cmdReport {
		return status{}, fmt.Errorf("ceiling: nats-server: unknown command %q", cmd)
	}
	return status{Conns: n.s.NumClients(), Routes: n.s.NumRoutes(), SlowConsumers: n.s.NumSlowConsumers()}, nil
}

func (n *natsServer) close() {
	n.s.Shutdown()
	n.s.WaitForShutdown()
}
