package upstreams

import (
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

// After StreamCloses every close goes to the sink as it is recorded and none is kept;
// the counters and lateness are the same either way.
func TestRecorderStreamsCloses(t *testing.T) {
	r := NewRecorder()
	t0 := time.Unix(1000, 0)
	r.Record(CloseRecord{RemotePort: 1, Reason: ReasonPeer, Closed: t0})
	var got []int
	r.StreamCloses(func(c CloseRecord) { got = append(got, c.RemotePort) })
	for port := 2; port <= 4; port++ {
		r.Record(CloseRecord{RemotePort: port, Reason: ReasonIdle, IdleStart: t0, Due: t0.Add(time.Second), Closed: t0.Add(time.Second + 500*time.Microsecond)})
	}
	if !slices.Equal(got, []int{2, 3, 4}) {
		t.Errorf("streamed ports %v, want [2 3 4]", got)
	}
	if cs := r.Closes(); len(cs) != 1 || cs[0].RemotePort != 1 {
		t.Errorf("Closes() = %+v, want only the close before streaming", cs)
	}
	if st := r.Stats(); st.IdleCloses != 3 || st.CloseLateP50US != 500 {
		t.Errorf("Stats() = %+v, want 3 idle closes 500µs late", st)
	}
}

// With a memory d, an id run again within d of its first run is always a duplicate, one
// run again 2d or more later is not, and the set stays bounded however long it runs.
func TestExecutionSetRemembersForItsMemory(t *testing.T) {
	const d = time.Minute
	var s executionSet
	s.memory = d
	t0 := time.Unix(1000, 0)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	// 2,000 ids a second for 20 minutes of virtual time, in an order the workers'
	// interleaving could give (each block of 8 reversed); every 100th id runs again
	// 59 s later, every 1000th also 130 s later.
	type rerun struct {
		at  time.Time
		id  string
		dup bool
	}
	var soon, late []rerun // each in time order
	maxWords := 0
	for seq := range 2000 * 10 * 60 {
		s0 := seq ^ 7
		now := at(float64(seq) / 2000)
		for _, q := range []*[]rerun{&soon, &late} {
			for len(*q) > 0 && !(*q)[0].at.After(now) {
				r := (*q)[0]
				*q = (*q)[1:]
				if got := !s.add(r.id, r.at); got != r.dup {
					t.Fatalf("%s run again at %s: duplicate %v, want %v", r.id, r.at.Sub(t0), got, r.dup)
				}
				if s.add(r.id, r.at) {
					t.Fatalf("%s run a third time at %s counted as new", r.id, r.at.Sub(t0))
				}
			}
		}
		id := "run-" + strconv.Itoa(s0)
		if !s.add(id, now) {
			t.Fatalf("%s counted as a duplicate the first time it ran", id)
		}
		if s0%100 == 0 {
			soon = append(soon, rerun{at: now.Add(59 * time.Second), id: id, dup: true})
		}
		if s0%1000 == 0 {
			late = append(late, rerun{at: now.Add(130 * time.Second), id: id, dup: false})
		}
		if seq%1000 == 0 {
			words := 0
			for _, g := range []execGen{s.cur, s.prev} {
				for _, b := range g.bits {
					words += len(b.words)
				}
			}
			maxWords = max(maxWords, words)
		}
	}
	// Two generations of at most 2 minutes' ids (240,000 bits, 3,750 words) and the room
	// kept below each.
	if maxWords > 2*3750+200 {
		t.Errorf("the set held up to %d words for 2 minutes' ids at 2,000/s, want at most %d", maxWords, 2*3750+200)
	}
	// Other ids are forgotten alike.
	s = executionSet{memory: d}
	if !s.add("x", at(0)) || s.add("x", at(59)) || s.add("x", at(60)) {
		t.Error(`"x" run again within a minute counted as new`)
	}
	if !s.add("x", at(200)) {
		t.Error(`"x" run again 200 s later, with a memory of 60 s, counted as a duplicate`)
	}
}
