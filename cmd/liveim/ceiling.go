package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/liveim/liveim/bench/ceiling"
)

// runCeiling is `liveim ceiling`: it measures the limits liveim's fan-out
// figures are read against on this machine (a bare nats-server fan-out, a
// bare gobwas/ws broadcast or echo) and prints them.
func runCeiling(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg ceiling.Config
	fs := flag.NewFlagSet("ceiling", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args, os.Stderr); err != nil {
		return err
	}
	return ceiling.Run(ctx, cfg, stdout)
}

// runCeilingWorker is `liveim ceiling-worker`, the child process `liveim
// ceiling` starts for its servers and clients; it talks to its parent on
// stdin and stdout.
func runCeilingWorker(ctx context.Context, _ []string, stdout io.Writer) error {
	return ceiling.RunWorker(ctx, os.Stdin, stdout)
}
