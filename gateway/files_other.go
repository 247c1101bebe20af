//go:build !unix

package gateway

// openFileLimit: no limit is known on this platform.
func openFileLimit() int { return 0 }
