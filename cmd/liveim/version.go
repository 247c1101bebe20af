package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/liveim/liveim/internal/buildinfo"
)

// runVersion is `liveim version`: the version, commit and Go version of
// this binary (package buildinfo says where they come from).
func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("liveim version takes no arguments, got %q", fs.Args())
	}
	_, err := fmt.Fprintln(stdout, buildinfo.Get())
	return err
}

// runHealth is `liveim health`: GET --url, succeed on a 2xx answer. It is
// the healthcheck of containers from the image, which has no shell, curl
// or wget. It reads no LIVEIM_* variable: it runs inside a server's
// container, among the server's variables.
func runHealth(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8081/readyz", "URL to GET; a 2xx answer is healthy")
	timeout := fs.Duration("timeout", 3*time.Second, "bound on the request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("liveim health takes no arguments, got %q", fs.Args())
	}
	if *timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("unhealthy: %s answered %s: %s", *url, resp.Status, bytes.TrimSpace(body))
	}
	_, err = fmt.Fprintf(stdout, "healthy: %s answered %s\n", *url, resp.Status)
	return err
}
