package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal a phase is one line and no bar; on one, a phase that may wait long gets
// a bar that ends (its ticker goroutine gone, which goleak checks) when the next phase
// starts or the probe ends, and a short phase gets none.
func TestPhaseBarDrawsOnlyLongWaitsAndStops(t *testing.T) {
	var plain bytes.Buffer
	b := newPhaseBar(&plain)
	b.phase("coarse search: idle 6.4s", 8400*time.Millisecond)
	b.end()
	if got := plain.String(); got != "probe: coarse search: idle 6.4s (up to 8.4s)\n" {
		t.Errorf("off a terminal: %q", got)
	}
	var live bytes.Buffer
	b = &phaseBar{w: &live, live: true}
	b.phase("close distribution: 16 connections", 10*time.Minute)
	if b.bar == nil {
		t.Fatal("a 10-minute phase on a terminal: want a bar")
	}
	b.phase("race window: blind", time.Second)
	if b.bar != nil {
		t.Error("a 1 s phase: want no bar, and the last one ended")
	}
	b.end()
	if out := live.String(); !strings.Contains(out, "close distribution: 16 connections (s)") || !strings.Contains(out, "probe: race window: blind (up to 1s)") {
		t.Errorf("on a terminal: %q", out)
	}
}
