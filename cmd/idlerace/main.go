// Command idlerace reproduces the HTTP/1.1 keep-alive reuse race on demand and measures,
// side by side, how each client pool strategy fares against it. Each verb is one file;
// flags go in, a library call runs, an encoder writes the output.
package main

import (
	"os"

	"github.com/idlerace/idlerace/internal/procs"
)

func main() {
	procs.Widen() // more Ps than cores: see package procs for why a measuring run needs it
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
