package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// message is one line of the protocol (docs/agent-protocol.md), either way.
type message struct {
	Op       string            `json:"op"`
	Protocol int               `json:"protocol,omitempty"`
	ID       uint64            `json:"id,omitempty"`
	Lane     int               `json:"lane"`
	AtNS     string            `json:"at_ns,omitempty"`
	Timeout  string            `json:"timeout_ns,omitempty"`
	Method   string            `json:"method,omitempty"`
	URL      string            `json:"url,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Body     string            `json:"body,omitempty"`
	Kind     string            `json:"kind,omitempty"`
	Library  string            `json:"library,omitempty"`
	Version  string            `json:"version,omitempty"`
	Status   int               `json:"status,omitempty"`
	BytesIn  int64             `json:"bytes_in,omitempty"`
	StartNS  string            `json:"start_ns,omitempty"`
	EndNS    string            `json:"end_ns,omitempty"`
	Reused   *bool             `json:"reused,omitempty"`
	Port     int               `json:"local_port,omitempty"`
	Wrote    bool              `json:"wrote,omitempty"`
	Error    string            `json:"error,omitempty"`
	Class    string            `json:"class,omitempty"`
}

// Hello is what an agent says of itself.
type Hello struct {
	Kind, Library, Version string
}

// process is one running agent: it serves every lane of a cell.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	wmu    sync.Mutex
	enc    *json.Encoder
	stderr *tail
	hello  Hello

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan message
	exited  chan struct{}
	exitErr error
}

// helloTimeout bounds an agent's start: its runtime loading and its hello.
const helloTimeout = 30 * time.Second

// startProcess runs argv as an agent in dir and waits for its hello.
func startProcess(argv []string, dir string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	// Its own process group, so that Close can kill what it started; and killed with
	// idlerace however idlerace ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, stderr: &tail{max: 4096}, pending: map[uint64]chan message{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.enc = json.NewEncoder(p.stdin)
	hello := make(chan message, 1)
	go p.read(stdout, hello)
	if err := p.write(message{Op: "hello", Protocol: 1}); err != nil {
		p.kill()
		return nil, fmt.Errorf("%w; its log: %s", err, p.stderr)
	}
	select {
	case h := <-hello:
		p.hello = Hello{Kind: h.Kind, Library: h.Library, Version: h.Version}
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("the agent exited before its hello (%v); its log: %s", p.exitErr, p.stderr)
	case <-time.After(helloTimeout):
		p.kill()
		return nil, fmt.Errorf("no hello from the agent within %s; its log: %s", helloTimeout, p.stderr)
	}
}

// read delivers each result line to the send waiting for it, until the agent's stdout
// ends; then every send still waiting fails.
func (p *process) read(stdout io.Reader, hello chan<- message) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // not a protocol line; the conformance test catches an agent that writes them
		}
		switch m.Op {
		case "hello":
			select {
			case hello <- m:
			default:
			}
		case "result":
			p.mu.Lock()
			ch := p.pending[m.ID]
			delete(p.pending, m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exitErr = err
	if p.exitErr == nil {
		p.exitErr = errors.New("exited")
	}
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.mu.Unlock()
	close(p.exited)
}

func (p *process) write(m message) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.enc.Encode(m); err != nil {
		return fmt.Errorf("writing to the agent: %w", err)
	}
	return nil
}

// send sends m and waits for its result; ok is false when the agent died first (or
// did not answer within bound).
func (p *process) send(m message, bound time.Duration) (message, error) {
	ch := make(chan message, 1)
	p.mu.Lock()
	select {
	case <-p.exited:
		p.mu.Unlock()
		return message{}, fmt.Errorf("the agent is gone (%v); its log: %s", p.exitErr, p.stderr)
	default:
	}
	p.nextID++
	m.ID = p.nextID
	p.pending[m.ID] = ch
	p.mu.Unlock()
	if err := p.write(m); err != nil {
		return message{}, err
	}
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case r, ok := <-ch:
		if !ok {
			return message{}, fmt.Errorf("the agent died (%v); its log: %s", p.exitErr, p.stderr)
		}
		return r, nil
	case <-t.C:
		// An agent that stops answering is killed: its lanes' requests fail, classified.
		p.kill()
		return message{}, fmt.Errorf("the agent did not answer within %s and was killed; its log: %s", bound, p.stderr)
	}
}

// close ends the agent: stdin closed, then its process group killed if it has not
// exited within a second.
func (p *process) close() error {
	_ = p.write(message{Op: "close"})
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(time.Second):
		p.kill()
		<-p.exited
	}
	return nil
}

func (p *process) kill() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// tail keeps the last max bytes written to it (an agent's stderr).
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.b))
	if s == "" {
		return "(empty)"
	}
	return s
}

func nsString(t time.Time) string { return strconv.FormatInt(monoNS(t), 10) }

func parseNS(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return fromMonoNS(n), true
}
