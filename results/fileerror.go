package results

import "fmt"

// FileError is a problem in a matrix or policy file, in the one-line form every bad
// input takes: FILE:LINE: field: what is wrong (what is accepted).
type FileError struct {
	Path  string
	Line  int
	Field string
	Msg   string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.Path, e.Line, e.Field, e.Msg)
}
