//go:build !linux

package procstat

// RSS returns ErrUnsupported: there is no /proc.
func RSS(int) (int64, error) { return 0, ErrUnsupported }

// CPU returns ErrUnsupported: there is no /proc.
func CPU(int) (float64, error) { return 0, ErrUnsupported }

// MachineCPU returns ErrUnsupported: there is no /proc.
func MachineCPU() (float64, error) { return 0, ErrUnsupported }
