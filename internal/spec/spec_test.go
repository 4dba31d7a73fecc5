package spec

import (
	"strings"
	"testing"
	"time"
)

func TestGettersConsumeAndReportLeftovers(t *testing.T) {
	o, err := Parse("lanes=8, width=25ms,rate=600/1m,mode=a,extra=1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := o.Int("lanes", 1, 1, 100); err != nil || n != 8 {
		t.Fatalf("lanes %d %v", n, err)
	}
	if d, err := o.Duration("width", 0, false); err != nil || d != 25*time.Millisecond {
		t.Fatalf("width %s %v", d, err)
	}
	if r, err := o.Rate("rate", 0); err != nil || r != 10 {
		t.Fatalf("rate %v %v", r, err)
	}
	if m, err := o.Enum("mode", "b", "a", "b"); err != nil || m != "a" {
		t.Fatalf("mode %q %v", m, err)
	}
	if d, err := o.Duration("absent", time.Second, false); err != nil || d != time.Second {
		t.Fatalf("default %s %v", d, err)
	}
	if err := o.Unused(); err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Fatalf("Unused: %v", err)
	}
}

func TestBadValues(t *testing.T) {
	for args, want := range map[string]string{
		"a":       "want key=value",
		"a=1,a=2": "given twice",
		"=1":      "want key=value",
	} {
		if _, err := Parse(args); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want %q", args, err, want)
		}
	}
	o, _ := Parse("d=-1s,z=0,n=x,r=0/s,r2=5/x,e=q")
	if _, err := o.Duration("d", 0, true); err == nil {
		t.Error("negative duration accepted")
	}
	if _, err := o.Duration("z", 0, false); err == nil {
		t.Error("zero duration accepted")
	}
	if _, err := o.Int("n", 0, 0, 9); err == nil {
		t.Error("bad int accepted")
	}
	if _, err := o.Rate("r", 0); err == nil {
		t.Error("zero rate accepted")
	}
	if _, err := o.Rate("r2", 0); err == nil {
		t.Error("bad period accepted")
	}
	if _, err := o.Enum("e", "a", "a", "b"); err == nil {
		t.Error("bad enum accepted")
	}
}
