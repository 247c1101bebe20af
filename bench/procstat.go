package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// heapInUse reads go_memstats_heap_inuse_bytes from the /metrics of the
// server whose internal listener is at addr (host:port).
func heapInUse(addr string) (int64, error) {
	u := "http://" + addr + "/metrics"
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("%s: no go_memstats_heap_inuse_bytes", u)
}
