package upstreams

import (
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
	if !r.executions.add(id, time.Now()) {
		r.stats.Duplicates++
	}
}

// RememberExecutions makes the duplicate count forget an id once it ran more than
// between d and 2d ago (at least d), so that a long run's server keeps a bounded set: d
// should be the longest a request lives, all its attempts included. Zero (the default)
// remembers every id.
func (r *Recorder) RememberExecutions(d time.Duration) {
	r.mu.Lock()
	r.executions.memory = max(d, 0)
	r.mu.Unlock()
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
//
// With a memory (RememberExecutions), ids are kept in two generations of that length
// each, the older dropped as a new one starts: an id is remembered for at least the
// memory after it ran, and a long run keeps only its last one or two memories' worth
// (a 10-minute soak at 2,000/s otherwise grew by 150 KiB of bits, an hour at 45,000/s by
// 20 MiB). A retry runs again within its request's lifetime, so a memory of the longest
// lifetime (attempts × request timeout) misses no duplicate. Without one, nothing is
// forgotten.
type executionSet struct {
	memory    time.Duration
	since     time.Time // when cur began
	cur, prev execGen
}

// execGen is one generation of an executionSet.
type execGen struct {
	bits  map[string]*seqBits // run id -> its sequence numbers
	other map[string]struct{}
}

// seqBits is a bitset of sequence numbers from word base on (64 a word).
type seqBits struct {
	base  uint64
	words []uint64
}

func (b *seqBits) has(seq uint64) bool {
	w := seq / 64
	return w >= b.base && w-b.base < uint64(len(b.words)) && b.words[w-b.base]&(1<<(seq%64)) != 0
}

// set adds seq and reports whether it could: one more than a few words below the
// generation's first does not fit (a request retried from long ago; the caller keeps it
// apart) rather than grow the bitset down by all the ids in between.
func (b *seqBits) set(seq uint64) bool {
	w := seq / 64
	if w < b.base {
		if b.base-w > 64 {
			return false
		}
		// The workers' sequence numbers interleave: leave room below for the next few.
		grow := b.base - w + min(64, w)
		b.words = append(make([]uint64, grow, grow+uint64(len(b.words))), b.words...)
		b.base -= grow
	}
	for w-b.base >= uint64(len(b.words)) {
		b.words = append(b.words, 0)
	}
	b.words[w-b.base] |= 1 << (seq % 64)
	return true
}

// top is the highest word b holds.
func (b *seqBits) top() uint64 { return b.base + uint64(len(b.words)) }

// inOther reports whether id is in either generation's map.
func (s *executionSet) inOther(id string) bool {
	_, prev := s.prev.other[id]
	_, cur := s.cur.other[id]
	return prev || cur
}

// maxSeqBit bounds the bitsets: a sequence number above it (no run sends 64 million
// requests) is kept in the map instead, and so is one with a leading zero ("run-07" is
// another id than "run-7").
const maxSeqBit = 1 << 26

// add puts id in the set and reports whether it was new; now is when it ran.
func (s *executionSet) add(id string, now time.Time) bool {
	if s.memory > 0 {
		if s.since.IsZero() {
			s.since = now
		}
		if age := now.Sub(s.since); age >= s.memory {
			s.prev, s.cur = s.cur, execGen{}
			if age >= 2*s.memory {
				s.prev = execGen{}
			}
			s.since = now
		}
	}
	if i := strings.LastIndexByte(id, '-'); i > 0 {
		if seq, err := strconv.ParseUint(id[i+1:], 10, 64); err == nil && seq < maxSeqBit && (id[i+1] != '0' || i+2 == len(id)) {
			run := id[:i]
			prev, cur := s.prev.bits[run], s.cur.bits[run]
			if prev != nil && prev.has(seq) || cur != nil && cur.has(seq) {
				return false
			}
			if cur == nil {
				if s.cur.bits == nil {
					s.cur.bits = map[string]*seqBits{}
				}
				// A new generation starts where the last one ended, so that the first
				// id it meets, if a retry from long ago, does not set its base.
				base := seq / 64
				if prev != nil && prev.top() > base {
					base = prev.top()
				}
				cur = &seqBits{base: base}
				s.cur.bits[strings.Clone(run)] = cur // do not pin the request's header
			}
			if !s.inOther(id) && cur.set(seq) {
				return true
			}
		}
	}
	if s.inOther(id) {
		return false
	}
	if s.cur.other == nil {
		s.cur.other = map[string]struct{}{}
	}
	s.cur.other[strings.Clone(id)] = struct{}{}
	return true
}
