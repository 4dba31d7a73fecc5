package upstreams

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	stats      Stats // counters; the CloseLate fields are filled by Stats()
	closes     closeLog
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
	defer r.mu.Unlock()
	r.closes.add(c)
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

// Closes returns every close recorded so far, in order of close time.
func (r *Recorder) Closes() []CloseRecord {
	r.mu.Lock()
	out := r.closes.all()
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

// closeLog holds every close a Recorder saw, in the order recorded, in 64 bytes a close
// where a CloseRecord takes 168 (five time.Time of 24 bytes, a string header, ints), and
// in chunks, so that it never holds a doubled backing array either. It is the one thing a
// long cell's server keeps per connection: 5,000-9,000 closes in 10 minutes of the soak
// at 2,000 requests/s, 1.5 MiB of CloseRecords with up to as much again of append's
// headroom, ~0.6 MiB now. Closes() still returns every close in full: matrix matches the
// client's stale failures to them by port and time after the cell, and takes the median
// idle-close lag of all of them, so none can be dropped or summarised without changing
// summary.json.
//
// A time is kept as nanoseconds since base (the first close's Closed) and given back as
// base.Add(offset): the same monotonic clock reading as the original, so every Before,
// After and Sub against another time.Now() is exactly what it was. Only the wall clock
// reading may differ from the original's, by however far the wall clock was stepped or
// slewed since base; nothing compares closes by wall clock. A record that would not come
// back identical in those terms (times without a monotonic reading that do not round
// trip, another Location, an unknown reason, a port or request count out of range) is
// kept whole.
type closeLog struct {
	base   time.Time
	chunks [][]closeEntry
	odd    map[int]CloseRecord // entry index -> a record kept whole
	n      int
}

const closeChunk = 1024 // entries per chunk: 64 KiB

type closeEntry struct {
	at       [5]int64 // Accepted, IdleStart, Due, Stopped, Closed: ns since base; noTime for zero
	skew     time.Duration
	requests int32
	port     int32
	reason   uint8 // index in closeReasons; oddReason: the record is in closeLog.odd
	unread   bool
}

const (
	noTime    = math.MinInt64
	oddReason = math.MaxUint8
)

// closeReasons are the reasons an entry can name by index.
var closeReasons = []string{ReasonIdle, ReasonMaxRequests, ReasonPeer, ReasonShutdown, ReasonError, ReasonCloseAfter, ReasonRestart, ""}

func (l *closeLog) add(c CloseRecord) {
	if l.n == 0 {
		for _, t := range []time.Time{c.Closed, c.Accepted, c.IdleStart} {
			if !t.IsZero() {
				l.base = t
				break
			}
		}
	}
	e, ok := l.encode(c)
	if !ok {
		if l.odd == nil {
			l.odd = map[int]CloseRecord{}
		}
		l.odd[l.n] = c
		e = closeEntry{reason: oddReason}
	}
	if l.n%closeChunk == 0 {
		l.chunks = append(l.chunks, make([]closeEntry, 0, closeChunk))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, e)
	l.n++
}

func (l *closeLog) encode(c CloseRecord) (closeEntry, bool) {
	reason := slices.Index(closeReasons, c.Reason)
	if reason < 0 || c.RemotePort < math.MinInt32 || c.RemotePort > math.MaxInt32 || c.Requests < math.MinInt32 || c.Requests > math.MaxInt32 {
		return closeEntry{}, false
	}
	e := closeEntry{skew: c.Skew, requests: int32(c.Requests), port: int32(c.RemotePort), reason: uint8(reason), unread: c.Unread}
	for i, t := range [5]time.Time{c.Accepted, c.IdleStart, c.Due, c.Stopped, c.Closed} {
		if t.IsZero() {
			e.at[i] = noTime
			continue
		}
		d := t.Sub(l.base)
		if d == math.MinInt64 || d == math.MaxInt64 || t.Location() != l.base.Location() || hasMonotonic(t) != hasMonotonic(l.base) {
			return closeEntry{}, false // Sub saturated, or base.Add(d) would not be t
		}
		if !hasMonotonic(t) && !l.base.Add(d).Equal(t) {
			return closeEntry{}, false
		}
		e.at[i] = int64(d)
	}
	return e, true
}

func (l *closeLog) decode(e closeEntry) CloseRecord {
	var at [5]time.Time
	for i, d := range e.at {
		if d != noTime {
			at[i] = l.base.Add(time.Duration(d))
		}
	}
	return CloseRecord{
		RemotePort: int(e.port), Accepted: at[0], IdleStart: at[1], Due: at[2], Stopped: at[3], Closed: at[4],
		Reason: closeReasons[e.reason], Unread: e.unread, Requests: int(e.requests), Skew: e.skew,
	}
}

// all returns every close in the order recorded.
func (l *closeLog) all() []CloseRecord {
	out := make([]CloseRecord, 0, l.n)
	for _, chunk := range l.chunks {
		for _, e := range chunk {
			if e.reason == oddReason {
				out = append(out, l.odd[len(out)])
			} else {
				out = append(out, l.decode(e))
			}
		}
	}
	return out
}

// hasMonotonic reports whether t carries a monotonic clock reading (Round(0) strips it).
func hasMonotonic(t time.Time) bool { return t != t.Round(0) }
