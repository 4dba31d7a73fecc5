//go:build linux && cgo

package wire

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/idlerace/idlerace/upstreams"
)

// The ring: 16 blocks of 128 KiB, about 5,000 segments of headers, so that a reader
// held off the CPU for a second at 5,000 segments/s drops none; a block goes to the
// reader when full or after blockTimeout, and Stop's drain ends at the first empty poll.
const (
	blockSize    = 128 << 10
	numBlocks    = 16
	blockTimeout = 10 * time.Millisecond
	pollTimeout  = 20 * time.Millisecond
	// drainFor is how long Stop reads on at least: a partly filled block reaches the
	// reader only when the kernel's block timer retires it, which a loaded machine
	// can run late.
	drainFor = 10 * blockTimeout
)

type capturer struct {
	tp       *afpacket.TPacket
	tr       *tracker
	port     uint16
	pcap     *pcapgo.Writer
	pcapErr  error
	stopping chan struct{}
	done     chan struct{}
	once     sync.Once
	stats    Stats
	err      error
}

// Start begins capturing opts.Port's segments on opts.Interface.
func Start(opts Options) (*Capture, error) {
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("wire: port %d: want 1..65535", opts.Port)
	}
	iface := opts.Interface
	if iface == "" {
		iface = "lo"
	}
	tp, err := afpacket.NewTPacket(afpacket.OptInterface(iface), afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(numBlocks), afpacket.OptBlockTimeout(blockTimeout),
		afpacket.OptPollTimeout(pollTimeout), afpacket.TPacketVersion3)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			// An AF_PACKET socket needs CAP_NET_RAW.
			return nil, &unavailable{reason: "not root", err: err}
		}
		return nil, fmt.Errorf("wire: capturing on %s: %w", iface, err)
	}
	filter, err := portFilter(uint16(opts.Port))
	if err == nil {
		err = tp.SetBPF(filter)
	}
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("wire: filter for port %d: %w", opts.Port, err)
	}
	// Until the filter was attached the ring took everything the interface carried (both
	// copies of loopback's segments, other ports): empty it before counting. The server
	// has no client yet, so nothing of its own is lost.
	for {
		if _, _, err := tp.ZeroCopyReadPacketData(); err != nil {
			break
		}
	}
	rec := upstreams.NewRecorder()
	c := &capturer{tp: tp, tr: newTracker(rec, opts.IdleTimeout, opts.OnReuse), port: uint16(opts.Port),
		stopping: make(chan struct{}), done: make(chan struct{})}
	if opts.PCAP != nil {
		c.pcap = pcapgo.NewWriterNanos(opts.PCAP)
		c.pcapErr = c.pcap.WriteFileHeader(snapLen, layers.LinkTypeEthernet)
	}
	go c.run()
	return &Capture{rec: rec, impl: c}, nil
}

// run reads segments until Stop, then until the ring is empty.
func (c *capturer) run() {
	defer close(c.done)
	var (
		eth     layers.Ethernet
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		decoded []gopacket.LayerType
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp)
	parser.IgnoreUnsupported = true
	var stopAt time.Time
	for {
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			if !stopAt.IsZero() && time.Since(stopAt) >= drainFor {
				return
			}
			if stopAt.IsZero() {
				select {
				case <-c.stopping:
					// Read on until the ring is empty and every block the kernel was
					// filling has been handed over: what it took before Stop is in the view.
					stopAt = time.Now()
				default:
				}
			}
			continue
		}
		if err != nil {
			c.err = fmt.Errorf("wire: reading: %w", err)
			return
		}
		if err := parser.DecodeLayers(data, &decoded); err != nil && len(decoded) == 0 {
			continue
		}
		s, ok := c.segment(monotonic(ci.Timestamp), decoded, &ip4, &ip6, &tcp)
		if !ok {
			continue
		}
		c.tr.add(s)
		if c.pcap != nil && c.pcapErr == nil {
			c.pcapErr = c.pcap.WritePacket(ci, data)
		}
	}
}

// monotonic gives a kernel timestamp (CLOCK_REALTIME) Go's monotonic reading, so that
// it orders and subtracts exactly with the client's time.Now() readings: the packet's
// age on the wall clock, taken off now's monotonic reading. A wall clock stepped or
// slewed (NTP) moves the realtime stamps but not the packet's age, so segments and the
// client's events stay in one time.
func monotonic(kernel time.Time) time.Time {
	now := time.Now()
	return now.Add(kernel.Sub(now.Round(0)))
}

// segment is the decoded packet as the tracker sees it; ok is false for anything but
// a TCP segment of the port.
func (c *capturer) segment(at time.Time, decoded []gopacket.LayerType, ip4 *layers.IPv4, ip6 *layers.IPv6, tcp *layers.TCP) (segment, bool) {
	var ipPayload int
	hasTCP := false
	for _, l := range decoded {
		switch l {
		case layers.LayerTypeIPv4:
			ipPayload = int(ip4.Length) - int(ip4.IHL)*4
		case layers.LayerTypeIPv6:
			ipPayload = int(ip6.Length)
		case layers.LayerTypeTCP:
			hasTCP = true
		}
	}
	if !hasTCP {
		return segment{}, false
	}
	s := segment{at: at, syn: tcp.SYN, ack: tcp.ACK, fin: tcp.FIN, rst: tcp.RST,
		payload: max(ipPayload-int(tcp.DataOffset)*4, 0)}
	switch {
	case uint16(tcp.SrcPort) == c.port:
		s.fromServer, s.clientPort = true, int(tcp.DstPort)
	case uint16(tcp.DstPort) == c.port:
		s.clientPort = int(tcp.SrcPort)
	default:
		return segment{}, false
	}
	return s, true
}

func (c *capturer) stop() (Stats, error) {
	c.once.Do(func() {
		close(c.stopping)
		<-c.done
		st := c.tr.stats
		if _, v3, err := c.tp.SocketStats(); err == nil {
			st.Drops = int64(v3.Drops())
		}
		c.tp.Close()
		c.stats = st
		if c.err == nil && c.pcapErr != nil {
			c.err = fmt.Errorf("wire: writing the pcap: %w", c.pcapErr)
		}
	})
	return c.stats, c.err
}
