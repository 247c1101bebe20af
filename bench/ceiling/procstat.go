package ceiling

import "github.com/liveim/liveim/internal/procstat"

// sumCPU returns the CPU seconds of all pids together.
func sumCPU(pids []int) (float64, error) {
	var total float64
	for _, pid := range pids {
		c, err := procstat.CPU(pid)
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}
