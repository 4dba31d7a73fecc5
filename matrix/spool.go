package matrix

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"
	"os"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// spool holds one cell's vegeta results until the cell finishes. A cell abandoned on
// SIGINT is not a measurement: the summary leaves it out, and so must --results,
// or `vegeta report` over the file would count requests no cell accounts for.
// Results go to an unlinked temporary file rather than memory, because a long
// constant-rate cell can produce millions of them.
type spool struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
	n   int
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "idlerace-spool-*")
	if err != nil {
		return nil, fmt.Errorf("results spool: %w", err)
	}
	// Unlinked at once: nothing is left behind however the process ends.
	_ = os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 64<<10)
	return &spool{f: f, w: w, enc: gob.NewEncoder(w)}, nil
}

// Encode is a vegeta.Encoder.
func (s *spool) Encode(r *vegeta.Result) error {
	s.n++
	return s.enc.Encode(r)
}

// flush replays every spooled result, in order, into dst.
func (s *spool) flush(dst vegeta.Encoder) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("results spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("results spool: %w", err)
	}
	dec := gob.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))
	for i := 0; i < s.n; i++ {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("results spool: result %d of %d: %w", i+1, s.n, err)
		}
		if err := dst(&r); err != nil {
			return err
		}
	}
	return nil
}

func (s *spool) close() { _ = s.f.Close() }
