package results

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// ManifestSchema names the version of manifest.json.
const ManifestSchema = "idlerace.manifest/v1"

// Manifest says what a run directory is: which build ran which matrix where, and
// whether it finished. A run interrupted by SIGINT or SIGTERM is "partial";
// `idlerace run --resume DIR` runs only its missing cells.
type Manifest struct {
	Schema string `json:"schema"`
	// State is "running", "partial" (interrupted or broken) or "complete".
	State    string    `json:"state"`
	Tool     Tool      `json:"tool"`
	Kernel   string    `json:"kernel"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Matrix names the matrix file as run, relative to the run directory.
	Matrix     string   `json:"matrix"`
	CellsTotal int      `json:"cells_total"`
	CellsDone  int      `json:"cells_done"`
	Parallel   int      `json:"parallel"`
	Args       []string `json:"args,omitempty"`
	// Error is why a broken run stopped.
	Error string `json:"error,omitempty"`
	// Shard, for one shard of a matrix (run --shard I/N), says which, and of what.
	Shard *Shard `json:"shard,omitempty"`
}

// Shard is one shard of a matrix: the cells whose index in the expanded matrix is
// ≡ Index mod Count. MatrixSHA256 names the matrix file as run, so that `idlerace merge`
// joins only shards of the same matrix.
type Shard struct {
	Index        int    `json:"index"`
	Count        int    `json:"count"`
	MatrixSHA256 string `json:"matrix_sha256"`
}

// WriteManifest writes m as indented JSON, atomically.
func WriteManifest(path string, m *Manifest) error {
	if m.Schema == "" {
		m.Schema = ManifestSchema
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// ReadManifest reads a manifest, refusing another schema.
func ReadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if m.Schema != ManifestSchema {
		return nil, fmt.Errorf("%s: schema %q not supported (accepted: %q)", path, m.Schema, ManifestSchema)
	}
	return &m, nil
}

// Kernel returns the running kernel's release, or "" where it cannot be read.
func Kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
