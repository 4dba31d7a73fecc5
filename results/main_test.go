package results

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

// update rewrites golden files under testdata/ instead of comparing against them:
// go test ./results/ -run TestRenderTable -update
var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
