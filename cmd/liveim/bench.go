package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/liveim/liveim/bench"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg bench.Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args, os.Stderr); err != nil {
		return err
	}
	return bench.Run(ctx, cfg, stdout)
}
