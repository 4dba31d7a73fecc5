//go:build !linux

package chaos

// wasReset cannot tell an EOF caused by an RST from a FIN here: a read EOF is a FIN.
func wasReset(*proxySide) bool { return false }

// watchReset cannot watch a socket after its EOF here: an RST that follows a FIN is not
// passed on (the peer's next write into it still fails).
func watchReset(*proxySide) bool { return false }
