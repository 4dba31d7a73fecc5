package attack

import (
	"context"
	"fmt"
)

// Run drives load against env, recording into rec, and closes the load's idle
// connections when it is done.
func Run(ctx context.Context, load Load, env *Env, rec *Recorder) error {
	rec.target, rec.method = env.Target, env.method()
	defer env.Close()
	if err := load.Run(ctx, env, rec); err != nil {
		return err
	}
	if rec.Requests == 0 && rec.FirstPrimeError != nil {
		return fmt.Errorf("%s: no request succeeded: %w", env.Target, rec.FirstPrimeError)
	}
	return nil
}
