package upstreams

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Lateness histogram range, microseconds (the project's 1 µs .. 60 s, 3 digits).
const (
	lateMinUS = 1
	lateMaxUS = 60_000_000
)

// Recorder is the account an in-process server (builtin, gonet) keeps of itself: the
// connections it accepted, the requests it executed and duplicated, and every close it
// made with, for idle closes, how late each landed. Its methods are safe for concurrent
// use; each takes one mutex and does nothing else under it, so a server may call them
// while holding a lock of its own (never the other way round).
type Recorder struct {
	mu         sync.Mutex
	stats      Stats         // counters; the CloseLate fields are filled by Stats()
	closes     []CloseRecord // until StreamCloses
	sink       func(CloseRecord)
	late       *hdrhistogram.Histogram // idle-close lateness, microseconds
	executions executionSet            // request ids seen
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		late: hdrhistogram.New(lateMinUS, lateMaxUS, 3),
	}
}

// CountAccepted counts one accepted connection (Stats.Accepted).
func (r *Recorder) CountAccepted() {
	r.mu.Lock()
	r.stats.Accepted++
	r.mu.Unlock()
}

// CountExecution counts one executed request carrying id ("" for none): the same id
// executed again is a duplicate, a retried request the server had already run.
func (r *Recorder) CountExecution(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Executed++
	if id == "" {
		return
	}
	if !r.executions.add(id) {
		r.stats.Duplicates++
	}
}

// Record adds one close. An idle close counts in Stats.IdleCloses and, when it has a Due,
// its lateness goes into the percentiles: Closed minus Due, or minus IdleStart when Due
// came before it (a skew below -T closes at once, so lateness counts from when the close
// could first have happened). Record runs after close(): nothing here delays a close.
func (r *Recorder) Record(c CloseRecord) {
	r.mu.Lock()
	sink := r.sink
	r.record(c)
	r.mu.Unlock()
	if sink != nil {
		sink(c)
	}
}

func (r *Recorder) record(c CloseRecord) {
	if r.sink == nil {
		r.closes = append(r.closes, c)
	}
	if c.Unread {
		r.stats.ClosesWithUnread++
	}
	if c.Reason != ReasonIdle {
		return
	}
	r.stats.IdleCloses++
	if c.Due.IsZero() {
		return
	}
	from := c.Due
	if from.Before(c.IdleStart) {
		from = c.IdleStart
	}
	r.late.RecordValue(min(max(c.Closed.Sub(from).Microseconds(), 0), lateMaxUS))
}

// Stats returns the counters so far and the idle-close lateness percentiles.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	if r.late.TotalCount() > 0 {
		st.CloseLateP50US = r.late.ValueAtQuantile(50)
		st.CloseLateP99US = r.late.ValueAtQuantile(99)
		st.CloseLateMaxUS = r.late.Max()
	}
	return st
}

// StreamCloses hands every close recorded from now on to f, as Record is called (from
// the server's goroutines, after the Recorder's lock is released; f must be safe for
// concurrent use), instead of keeping it for Closes: a long cell's server then keeps
// nothing per connection (a soak's 10 minutes kept 6,000-12,000 closes, the largest
// part of its growth), and the cell matches closes as they come (matrix's closeMatcher).
func (r *Recorder) StreamCloses(f func(CloseRecord)) {
	r.mu.Lock()
	r.sink = f
	r.mu.Unlock()
}

// Closes returns every close recorded before StreamCloses (all of them, without it),
// in order of close time.
func (r *Recorder) Closes() []CloseRecord {
	r.mu.Lock()
	out := slices.Clone(r.closes)
	r.mu.Unlock()
	slices.SortStableFunc(out, func(a, b CloseRecord) int { return a.Closed.Compare(b.Closed) })
	return out
}

// executionSet is the set of request ids a server executed, for counting duplicates.
// The attack's ids are "<run id>-<sequence number>": those are kept as one bit per
// sequence number under their run id (a million requests in 122 KiB, where a map of
// the id strings took 60 bytes a request and made a long cell's server grow without
// bound); any other id goes into a map as it is.
type executionSet struct {
	bits  map[string][]uint64 // run id -> bit seq set
	other map[string]struct{}
}

// maxSeqBit bounds the bitsets: a sequence number above it (no run sends 64 million
// requests) is kept in the map instead, and so is one with a leading zero ("run-07" is
// another id than "run-7").
const maxSeqBit = 1 << 26

// add puts id in the set and reports whether it was new.
func (s *executionSet) add(id string) bool {
	if i := strings.LastIndexByte(id, '-'); i > 0 {
		if seq, err := strconv.ParseUint(id[i+1:], 10, 64); err == nil && seq < maxSeqBit && (id[i+1] != '0' || i+2 == len(id)) {
			if s.bits == nil {
				s.bits = map[string][]uint64{}
			}
			run := id[:i]
			words, ok := s.bits[run]
			if !ok {
				run = strings.Clone(run) // do not pin the request's header
			}
			w, bit := seq/64, uint64(1)<<(seq%64)
			for uint64(len(words)) <= w {
				words = append(words, 0)
			}
			seen := words[w]&bit != 0
			words[w] |= bit
			s.bits[run] = words
			return !seen
		}
	}
	if s.other == nil {
		s.other = map[string]struct{}{}
	}
	if _, seen := s.other[id]; seen {
		return false
	}
	s.other[strings.Clone(id)] = struct{}{}
	return true
}
