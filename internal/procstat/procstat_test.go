package procstat

import (
	"errors"
	"os"
	"runtime"
	"testing"
)

func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		for _, err := range []error{second(RSS(os.Getpid())), second(CPU(os.Getpid())), second(MachineCPU())} {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("without /proc: %v, want ErrUnsupported", err)
			}
		}
		return
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSS %d, %v", rss, err)
	}
	x := 0
	for i := range 50_000_000 { // burn a little CPU
		x += i
	}
	_ = x
	cpu, err := CPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("CPU %v, %v", cpu, err)
	}
	m, err := MachineCPU()
	if err != nil || m < cpu {
		t.Fatalf("machine CPU %v below this process's %v (%v)", m, cpu, err)
	}
	if _, err := RSS(-1); err == nil {
		t.Fatal("no such process, no error")
	}
}

func second[T any](_ T, err error) error { return err }
