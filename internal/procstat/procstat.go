// Package procstat reads what the load generators measure about
// processes and the machine from /proc: Linux only. Elsewhere every
// function returns ErrUnsupported.
package procstat

import "errors"

// ErrUnsupported is the error of every function where there is no /proc.
var ErrUnsupported = errors.New("procstat: process and machine figures are read from /proc, which only Linux has")
