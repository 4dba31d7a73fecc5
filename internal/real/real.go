// Package real starts and stops the real servers under test (nginx, uvicorn, node) the
// way a user runs them, and holds what the real kinds share: refusing the Config fields
// a real server cannot honour, a private directory, a free loopback port, readiness by
// TCP connect plus an HTTP GET, a stop by SIGTERM then SIGKILL to the server's process
// group, the tail of what the server said when it would not start, and the running
// server a kind embeds (Server; App for a server whose counts live in a shipped script).
//
//	kind: CheckConfig, then Launch(Launcher) (StartApp for an App), up to 3 fresh ports:
//	  ListenAddr -> NewDir -> Launcher.Prepare writes config, returns the Spec
//	  Start(Spec) --exec (own process group, Pdeathsig SIGKILL)--> server process(es)
//	     | poll: connect + GET Spec.ReadyPath until 200, the process exits, or the deadline
//	     '-> *Process  (failure: *upstreams.StartError with the log tail)
//	  Server.Close: BeforeStop; Process.Stop: SIGTERM -pgid, Grace, SIGKILL -pgid, reap;
//	                AfterStop; remove the dir
//
// It knows nothing of any one server's configuration language.
package real

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// Limits says why a kind cannot honour a Config field; "" means it can.
type Limits struct {
	MaxRequests string // MaxRequests > 0
	ServiceTime string // ServiceTime > 0
	Advertise   string // Advertise > 0
	NoAdvertise string // Advertise < 0
}

// CheckConfig validates cfg and refuses, naming the field, what no real server can do
// (a skew model other than none, close mode rst, faults) and what l says this kind
// cannot do.
func CheckConfig(kind string, cfg upstreams.Config, l Limits) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Listen != nil {
		return fmt.Errorf("upstream config: Listen: %s runs as its own process and cannot take a listener (the netem path is builtin-only)", kind)
	}
	if cfg.Skew != nil && cfg.Skew.String() != "none" {
		return fmt.Errorf("upstream config: Skew %q: %s cannot honour a skew model; configure the skewed timeout as IdleTimeout instead", cfg.Skew.String(), kind)
	}
	if cfg.Close != "" && cfg.Close != "fin" {
		return fmt.Errorf("upstream config: Close %q: %s closes idle connections its own way (FIN); only builtin can reset them", string(cfg.Close), kind)
	}
	if len(cfg.Faults) > 0 {
		specs := make([]string, len(cfg.Faults))
		for i, f := range cfg.Faults {
			specs[i] = f.String()
		}
		return fmt.Errorf("upstream config: Faults %q: %s cannot inject faults; only builtin does", specs, kind)
	}
	switch {
	case cfg.MaxRequests > 0 && l.MaxRequests != "":
		return fmt.Errorf("upstream config: MaxRequests %d: %s", cfg.MaxRequests, l.MaxRequests)
	case cfg.ServiceTime > 0 && l.ServiceTime != "":
		return fmt.Errorf("upstream config: ServiceTime %v: %s", cfg.ServiceTime, l.ServiceTime)
	case cfg.Advertise > 0 && l.Advertise != "":
		return fmt.Errorf("upstream config: Advertise %v: %s", cfg.Advertise, l.Advertise)
	case cfg.Advertise < 0 && l.NoAdvertise != "":
		return fmt.Errorf("upstream config: Advertise %v (none): %s", cfg.Advertise, l.NoAdvertise)
	}
	return nil
}

// Addr is where a real server listens.
type Addr struct {
	Host string // an IP literal: "127.0.0.1" or "::1"
	Port int
	Auto bool // the port was picked here, free when picked; a server may lose it to a race
}

// HostPort is "127.0.0.1:8080" or "[::1]:8080".
func (a Addr) HostPort() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// URL is "http://HOST:PORT".
func (a Addr) URL() string { return "http://" + a.HostPort() }

// ListenAddr resolves cfg.Addr ("" means upstreams.DefaultAddr; "localhost" means
// 127.0.0.1) and, for port 0, picks a free port on that loopback address by binding it
// and letting it go.
func ListenAddr(cfgAddr string) (Addr, error) {
	if cfgAddr == "" {
		cfgAddr = upstreams.DefaultAddr
	}
	if err := upstreams.CheckLoopback(cfgAddr); err != nil {
		return Addr{}, fmt.Errorf("upstream config: Addr: %w", err)
	}
	host, portStr, _ := net.SplitHostPort(cfgAddr)
	if host == "localhost" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return Addr{}, fmt.Errorf("upstream config: Addr: %q: bad port", cfgAddr)
	}
	a := Addr{Host: host, Port: port}
	if port != 0 {
		return a, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return Addr{}, &upstreams.StartError{Err: fmt.Errorf("picking a free port on %s: %w", host, err)}
	}
	a.Port, a.Auto = ln.Addr().(*net.TCPAddr).Port, true
	ln.Close()
	return a, nil
}

// NewDir makes the private directory of one server, "idlerace-KIND-*" under the system
// temp dir. The kind removes it when the server stops.
func NewDir(kind string) (string, error) {
	dir, err := os.MkdirTemp("", "idlerace-"+kind+"-")
	if err != nil {
		return "", &upstreams.StartError{Err: fmt.Errorf("temp dir: %w", err)}
	}
	return dir, nil
}

// Seconds returns d in whole seconds, or an error naming field when d is not whole.
func Seconds(kind, field, flag string, d time.Duration) (int64, error) {
	if d%time.Second != 0 {
		return 0, fmt.Errorf("upstream config: %s: %s %s takes whole seconds; got %v", field, kind, flag, d)
	}
	return int64(d / time.Second), nil
}

// ErrNotReady is the cause of a StartError when the server never answered in time.
var ErrNotReady = errors.New("not ready")

// Token returns a random token that a server started here echoes on its readiness path.
func Token() string {
	var b [12]byte
	rand.Read(b[:])
	return "idlerace-" + hex.EncodeToString(b[:])
}
