package upstreams

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestRecorderCountsAndLateness(t *testing.T) {
	r := NewRecorder()
	r.CountAccepted()
	r.CountAccepted()
	for _, id := range []string{"a", "b", "a", "", "", "a"} {
		r.CountExecution(id)
	}
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	r.Record(CloseRecord{RemotePort: 3, Reason: ReasonIdle, IdleStart: at(0), Due: at(100 * time.Millisecond), Closed: at(100*time.Millisecond + 300*time.Microsecond)})
	// Due before IdleStart (skew below -T): lateness counts from IdleStart, 2ms here.
	r.Record(CloseRecord{RemotePort: 1, Reason: ReasonIdle, IdleStart: at(0), Due: at(-5 * time.Millisecond), Closed: at(2 * time.Millisecond)})
	// Closed before Due counts as 0; an idle close without Due counts but has no lateness.
	r.Record(CloseRecord{RemotePort: 4, Reason: ReasonIdle, IdleStart: at(0), Due: at(time.Second), Closed: at(time.Millisecond)})
	r.Record(CloseRecord{RemotePort: 5, Reason: ReasonIdle, IdleStart: at(0), Closed: at(-time.Millisecond)})
	r.Record(CloseRecord{RemotePort: 2, Reason: ReasonPeer, Unread: true, IdleStart: at(0), Due: at(time.Millisecond), Closed: at(-2 * time.Millisecond)})

	st := r.Stats()
	want := Stats{Accepted: 2, IdleCloses: 4, ClosesWithUnread: 1, Executed: 6, Duplicates: 2, CloseLateP50US: 300, CloseLateP99US: 2000, CloseLateMaxUS: 2000}
	if st != want {
		t.Errorf("Stats() =\n %+v, want\n %+v", st, want)
	}
	var ports []int
	for _, c := range r.Closes() {
		ports = append(ports, c.RemotePort)
	}
	if !slices.Equal(ports, []int{2, 5, 4, 1, 3}) {
		t.Errorf("Closes() in ports %v, want [2 5 4 1 3] (by close time)", ports)
	}
}

func TestRecorderStatsWithoutIdleClosesHasNoLateness(t *testing.T) {
	r := NewRecorder()
	r.Record(CloseRecord{Reason: ReasonShutdown, Due: time.Unix(1, 0), Closed: time.Unix(2, 0)})
	if st := r.Stats(); st != (Stats{}) {
		t.Errorf("Stats() = %+v, want all zero: a shutdown is no idle close", st)
	}
	if len(r.Closes()) != 1 {
		t.Errorf("Closes() = %v, want the one shutdown", r.Closes())
	}
}

// Attack ids ("<run>-<seq>") and any other ids count duplicates alike, exactly: the same
// id twice is one duplicate, ids that differ only in run, zero padding or form are not.
func TestRecorderCountsDuplicatesOfEveryIDForm(t *testing.T) {
	r := NewRecorder()
	ids := []string{"18f2a-1", "18f2a-2", "18f2a-1", "18f2b-1", "18f2a-01", "18f2a-01", "18f2a-0", "18f2a-0",
		"x", "x", "-3", "-3", "18f2a-99999999999", "18f2a-99999999999", "18f2a-+5", "18f2a-5", "18f2a-5"}
	for _, id := range ids {
		r.CountExecution(id)
	}
	// duplicates: 18f2a-1, 18f2a-01, 18f2a-0, x, -3, 18f2a-99999999999, 18f2a-5
	if st := r.Stats(); st.Executed != int64(len(ids)) || st.Duplicates != 7 {
		t.Fatalf("executed %d duplicates %d, want %d and 7", st.Executed, st.Duplicates, len(ids))
	}
	for seq := range 100_000 {
		r.CountExecution("run-" + strconv.Itoa(seq))
	}
	if st := r.Stats(); st.Duplicates != 7 {
		t.Fatalf("100,000 distinct ids made %d duplicates", st.Duplicates-7)
	}
}

// The close log keeps closes compactly and gives every one back: the same fields, the
// same monotonic readings (so Before, After and Sub against the client's times are what
// they were), zero times zero; records it cannot compact (no monotonic reading, another
// location, an unknown reason) come back whole, in their place.
func TestRecorderGivesBackEveryCloseAsRecorded(t *testing.T) {
	r := NewRecorder()
	now := time.Now()
	var in []CloseRecord
	for i := range 3000 {
		at := func(d time.Duration) time.Time { return now.Add(time.Duration(i)*time.Millisecond + d) }
		c := CloseRecord{RemotePort: 30000 + i, Accepted: at(-time.Second), IdleStart: at(-time.Millisecond), Closed: at(0),
			Reason: closeReasons[i%len(closeReasons)], Unread: i%3 == 0, Requests: i, Skew: time.Duration(i-1500) * time.Microsecond}
		if i%2 == 0 {
			c.Due, c.Stopped = at(-7*time.Microsecond), at(-3*time.Microsecond)
		}
		switch i {
		case 5:
			c.Reason = "a reason of a newer kind"
		case 6:
			c.Accepted = time.Unix(1000, 0) // no monotonic reading
		case 7:
			c.Closed = c.Closed.UTC()
		case 8:
			c.Requests = math.MaxInt32 + 1
		}
		in = append(in, c)
		r.Record(c)
	}
	out := r.Closes()
	if len(out) != len(in) {
		t.Fatalf("Closes() gave %d records back, %d recorded", len(out), len(in))
	}
	probe := now.Add(1500 * time.Millisecond) // a client's time.Now(), with a monotonic reading
	for i, o := range out {
		c := in[i]
		same := o.RemotePort == c.RemotePort && o.Reason == c.Reason && o.Unread == c.Unread && o.Requests == c.Requests && o.Skew == c.Skew
		for j, pair := range [][2]time.Time{{o.Accepted, c.Accepted}, {o.IdleStart, c.IdleStart}, {o.Due, c.Due}, {o.Stopped, c.Stopped}, {o.Closed, c.Closed}} {
			got, want := pair[0], pair[1]
			if got.IsZero() != want.IsZero() || !got.Equal(want) || got.Sub(probe) != want.Sub(probe) || got.Before(probe) != want.Before(probe) || hasMonotonic(got) != hasMonotonic(want) {
				t.Errorf("close %d, time %d: %v (monotonic %t), recorded %v (monotonic %t)", i, j, got, hasMonotonic(got), want, hasMonotonic(want))
			}
		}
		if !same {
			t.Errorf("close %d: %+v, recorded %+v", i, o, c)
		}
	}
	if len(r.closes.odd) != 4 {
		t.Errorf("%d records kept whole, want the 4 that cannot round-trip", len(r.closes.odd))
	}
}
