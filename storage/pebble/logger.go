package pebble

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// pebbleLogger adapts slog to Pebble's Logger interface.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

// Fatalf is called by Pebble on unrecoverable corruption; it must not
// return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Log(context.Background(), slog.LevelError+4, msg, "component", "pebble")
	} else {
		fmt.Fprintln(os.Stderr, "pebble fatal:", msg)
	}
	os.Exit(1)
}
