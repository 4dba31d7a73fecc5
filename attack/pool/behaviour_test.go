package pool

import "testing"

// Which methods a behaviour replays: any with a plain retry, the idempotent ones with
// IdempotentOnly, exactly RetryMethods when set (the JDK's GET and HEAD, not PUT), none
// without retries.
func TestReplaysFollowsTheDeclaredMethods(t *testing.T) {
	for _, c := range []struct {
		b      Behaviour
		method string
		want   bool
	}{
		{Behaviour{Retries: 1}, "POST", true},
		{Behaviour{Retries: 1, IdempotentOnly: true}, "POST", false},
		{Behaviour{Retries: 1, IdempotentOnly: true}, "PUT", true},
		{Behaviour{Retries: 1, RetryMethods: "GET HEAD"}, "GET", true},
		{Behaviour{Retries: 1, RetryMethods: "GET HEAD"}, "PUT", false},
		{Behaviour{Retries: 1, RetryMethods: "GET HEAD"}, "POST", false},
		{Behaviour{RetryMethods: "GET HEAD"}, "GET", false},
		{Behaviour{}, "GET", false},
	} {
		if got := c.b.Replays(c.method); got != c.want {
			t.Errorf("%+v replays %s: %v, want %v", c.b, c.method, got, c.want)
		}
	}
}
