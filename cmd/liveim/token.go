package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/ids"
)

func runToken(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory of liveim serve (reads app.json)")
	user := fs.String("user", "", "user ID (required)")
	role := fs.String("role", "", `login role: "admin" or empty`)
	ttl := fs.Duration("ttl", 24*time.Hour, "token lifetime")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if err := ids.Check("user", *user); err != nil {
		return err
	}
	if *role != "" && *role != auth.RoleAdmin {
		return fmt.Errorf("--role must be %q or empty", auth.RoleAdmin)
	}
	if *ttl <= 0 || *ttl > auth.DefaultMaxLifetime {
		return fmt.Errorf("--ttl must be positive and at most the app's maximum token lifetime, %v", auth.DefaultMaxLifetime)
	}
	info, err := demoapp.Load(*data)
	if err != nil {
		return fmt.Errorf("read app (run liveim serve --data %s first): %w", *data, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(demoapp.Issue(info, *user, *role, *ttl, time.Now()))
}

// runDemoApp prints the demo app of a `liveim serve` data directory
// (`liveim app` without a subcommand).
func runDemoApp(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory of liveim serve (reads app.json)")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	info, err := demoapp.Load(*data)
	if err != nil {
		return fmt.Errorf("read app (run liveim serve --data %s first): %w", *data, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}
