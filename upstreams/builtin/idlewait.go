package builtin

// verdict is what the waiter tells a waiting connection.
type verdict int

const (
	readable   verdict = iota // a request byte, the client's FIN or an error: read it
	pastDue                   // due passed and the connection's goroutine closes it
	closedIdle                // due passed and the waiter closed it (c.atDue)
	ended                     // the server or a restart closed it meanwhile
	unwatched                 // the waiter failed: wait on a read deadline instead
)

func (v verdict) String() string {
	switch v {
	case readable:
		return "readable"
	case pastDue:
		return "past due"
	case closedIdle:
		return "closed idle"
	case ended:
		return "ended"
	case unwatched:
		return "unwatched"
	}
	return "verdict(?)"
}
