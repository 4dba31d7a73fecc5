package real

import (
	"bytes"
	"os"
)

// LogTail reads a log a server appends to, a whole line at a time: each Lines call
// returns the complete lines written since the last, keeping a line still being
// written for the next call. Not safe for concurrent use.
type LogTail struct {
	Path    string
	offset  int64
	partial []byte
}

// Lines returns the complete lines appended since the last call (none when the file
// cannot be read: it is not there yet, or gone with its server's directory).
func (l *LogTail) Lines() [][]byte {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(l.offset, 0); err != nil {
		return nil
	}
	var buf bytes.Buffer
	n, _ := buf.ReadFrom(f)
	l.offset += n
	data := append(l.partial, buf.Bytes()...)
	last := bytes.LastIndexByte(data, '\n')
	l.partial = bytes.Clone(data[last+1:])
	var out [][]byte
	for line := range bytes.SplitSeq(data[:last+1], []byte("\n")) {
		if len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}
