package ceiling

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// child is a child process started by the parent of a run, talking the
// line protocol of RunWorker.
type child struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
}

// startChild starts a child with cfg.WorkerCommand and gives it j; its
// first status line says when it is ready.
func startChild(cfg Config, name string, j job) (*child, error) {
	cmd := exec.Command(cfg.WorkerCommand[0], cfg.WorkerCommand[1:]...)
	cmd.Env = append(os.Environ(), cfg.WorkerEnv...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %s: %w", name, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ceiling: start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10)}
	b, err := json.Marshal(j)
	if err != nil {
		c.stop()
		return nil, err
	}
	if _, err := fmt.Fprintf(in, "%s\n", b); err != nil {
		c.stop()
		return nil, fmt.Errorf("ceiling: %s: send job: %w", name, err)
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// call sends a command and returns the child's answer.
func (c *child) call(cmd string) (status, error) {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return status{}, fmt.Errorf("ceiling: %s: %s: %w", c.name, cmd, err)
	}
	return c.status()
}

// status reads the child's next status line.
func (c *child) status() (status, error) {
	line, err := c.out.ReadString('\n')
	if err != nil {
		return status{}, fmt.Errorf("ceiling: %s exited: %w", c.name, err)
	}
	var st status
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		return status{}, fmt.Errorf("ceiling: %s said %q: %w", c.name, strings.TrimSpace(line), err)
	}
	if st.Error != "" {
		return st, fmt.Errorf("ceiling: %s: %w", c.name, errors.New(st.Error))
	}
	return st, nil
}

// stop closes the child's stdin, which ends it, and waits; a child that
// does not end within 10 s is killed.
func (c *child) stop() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() {
		_ = c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// kill ends the child at once.
func (c *child) kill() { _ = c.cmd.Process.Kill() }

// callAll sends cmd to every child and returns their answers in order.
func callAll(cs []*child, cmd string) ([]status, error) {
	sts := make([]status, len(cs))
	for i, c := range cs {
		st, err := c.call(cmd)
		if err != nil {
			return nil, err
		}
		sts[i] = st
	}
	return sts, nil
}

// pids returns the process ids of cs.
func pids(cs []*child) []int {
	ps := make([]int, len(cs))
	for i, c := range cs {
		ps[i] = c.pid()
	}
	return ps
}
