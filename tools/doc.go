// Package tools pins the versions of the development tools that make lint and make bench
// run (go tool -modfile=tools/go.mod NAME), apart from the main module's dependencies.
package tools
