package pool

// IdleConnForTest returns one idle connection of a Pool, for benchmarks of the probe.
func IdleConnForTest(t Transport) *Conn {
	p := t.(*Pool)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.idle {
		if len(l) > 0 {
			return l[0]
		}
	}
	return nil
}

// ProbeForTest runs the read probe on c.
func ProbeForTest(c *Conn) error { return probe(c) }
