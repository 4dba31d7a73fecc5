// Command idlerace reproduces the HTTP/1.1 keep-alive reuse race on demand and measures,
// side by side, how each client pool strategy fares against it. Each verb is one file;
// flags go in, a library call runs, an encoder writes the output.
package main

import "os"

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
