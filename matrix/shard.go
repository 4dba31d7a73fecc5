package matrix

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/idlerace/idlerace/results"
)

// A shard is the cells of an expanded matrix whose index (in the matrix's own order,
// whatever machine runs it and however often it is resumed) is ≡ Index mod Count.
//
// Why modulo and not a split balanced by expected cell time: the matrix's order varies
// the strategy fastest and T, the upstream and the load slowest, and those set a cell's
// time; every shard then gets each of them about equally, with no estimate to get wrong
// (a cell's time is T × periods plus a server's start-up, which a real server changes by
// seconds). Shards differ by one cell at most.
type Shard struct{ Index, Count int }

// ParseShard reads "I/N", 0 <= I < N.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, bad(fmt.Errorf("--shard %q: want I/N, e.g. 0/4 (shards count from 0)", s))
	}
	sh, err := newShard(i, n)
	if err != nil {
		return Shard{}, bad(fmt.Errorf("--shard %q: %v", s, err))
	}
	return sh, nil
}

// ShardFromEnv is the shard of a pod of a Kubernetes Indexed Job: its index from
// JOB_COMPLETION_INDEX, the count from count (--shards), else IDLERACE_SHARDS. ok is
// false when neither gives a count (no sharding).
func ShardFromEnv(count int) (sh Shard, ok bool, err error) {
	n := ""
	if count > 0 {
		n = strconv.Itoa(count)
	} else if n = os.Getenv("IDLERACE_SHARDS"); n == "" {
		return Shard{}, false, nil
	}
	i := os.Getenv("JOB_COMPLETION_INDEX")
	if i == "" {
		return Shard{}, false, bad(fmt.Errorf("a shard count of %s but no JOB_COMPLETION_INDEX: give --shard I/N, or run as a pod of an Indexed Job", n))
	}
	sh, err = newShard(i, n)
	if err != nil {
		return Shard{}, false, bad(fmt.Errorf("JOB_COMPLETION_INDEX=%s with %s shards: %v", i, n, err))
	}
	return sh, true, nil
}

func newShard(i, n string) (Shard, error) {
	ni, err1 := strconv.Atoi(strings.TrimSpace(n))
	ii, err2 := strconv.Atoi(strings.TrimSpace(i))
	if err1 != nil || ni < 1 || ni > 10_000 {
		return Shard{}, fmt.Errorf("shard count %q: want a whole number from 1 to 10000", n)
	}
	if err2 != nil || ii < 0 || ii >= ni {
		return Shard{}, fmt.Errorf("shard index %q: want a whole number from 0 to %d", i, ni-1)
	}
	return Shard{Index: ii, Count: ni}, nil
}

// Select returns the shard's cells, in matrix order.
func (s Shard) Select(cells []CellSpec) []CellSpec {
	var out []CellSpec
	for i, c := range cells {
		if i%s.Count == s.Index {
			out = append(out, c)
		}
	}
	return out
}

// Record is what the shard's run directory keeps of it: its place and the matrix it is
// a shard of, by the SHA-256 of the matrix file as run.
func (s Shard) Record(matrixYAML []byte) *results.Shard {
	sum := sha256.Sum256(matrixYAML)
	return &results.Shard{Index: s.Index, Count: s.Count, MatrixSHA256: hex.EncodeToString(sum[:])}
}
