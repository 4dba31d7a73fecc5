package delay_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/hops/delay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The delay proxy is a hop of the latency path, not a --proxy: ParsePath takes it, Parse
// refuses it naming the proxy kinds, and it declares neither a pool nor an enclosure.
// Started in front of a listener it relays to it, says the delay it adds (at least what
// was asked) and that FINs cross it jitter/2 sooner than data, and stops.
func TestDelayIsALatencyHop(t *testing.T) {
	if _, err := hops.Parse("delay:delay=2ms"); err == nil {
		t.Fatal("--proxy took the delay proxy")
	}
	s, err := hops.ParsePath("delay:delay=2ms,jitter=1ms")
	if err != nil || s.Props.Pools || s.Props.Encloses {
		t.Fatalf("ParsePath: %+v, %v", s.Props, err)
	}
	if _, err := hops.ParsePath("delay:delay=-1ms"); err == nil {
		t.Error("a negative delay was taken")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		n, _ := c.Read(b)
		got <- string(b[:n])
	}()
	h, err := s.Start(context.Background(), hops.Config{Upstream: "http://" + ln.Addr().String(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := h.(*delay.Proxy)
	c, err := net.Dial("tcp", p.URL()[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello" {
		t.Errorf("the upstream got %q", s)
	}
	c.Close()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if p.OneWay() < 2500*time.Microsecond || p.FINLead() != 500*time.Microsecond || p.Kind() != delay.Kind {
		t.Errorf("one way %v, FIN lead %v, kind %q: want at least 2ms + 1ms/2, 0.5ms, delay", p.OneWay(), p.FINLead(), p.Kind())
	}
}
