package matrix_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(filepath.Join("..", "schemas", name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlAsJSON reads a YAML file into the values a JSON document would have.
func yamlAsJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// Every example validates against the published schema and parses with idlerace's own
// parser: the schema editors use and the parser the tool uses agree on the examples.
func TestEveryExampleValidates(t *testing.T) {
	matrixSchema, gateSchema := compileSchema(t, "matrix.schema.json"), compileSchema(t, "gate.schema.json")
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		doc := yamlAsJSON(t, f)
		if strings.HasPrefix(filepath.Base(f), "gate") {
			if err := gateSchema.Validate(doc); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			if _, err := results.ReadPolicy(f); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			continue
		}
		if err := matrixSchema.Validate(doc); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		mf, err := matrix.ReadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		cells, _ := mf.Cells()
		for _, c := range cells {
			if _, err := matrix.Prepare(c); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}

// The embedded default and examples/default.yaml are the same file.
func TestDefaultExampleIsTheEmbeddedDefault(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(matrix.DefaultYAML) {
		t.Fatal("examples/default.yaml differs from matrix/default.yaml")
	}
	if n := len(matrix.Default()); n != 24 {
		t.Fatalf("default has %d cells, want 24 (8 strategies x 3 skews)", n)
	}
}

// Malformed files in the schema's view are refused by the schema too (a spot check
// that the schema is not vacuous).
func TestSchemaRejectsWhatTheParserRejects(t *testing.T) {
	s := compileSchema(t, "matrix.schema.json")
	for _, doc := range []string{`{"strategy": ["blind"]}`, `{"strategies": []}`, `{"strategies": ["blind"], "repeats": 0}`, `{"strategies": ["blind"], "idle_timeout": "soon"}`} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err := s.Validate(v); err == nil {
			t.Errorf("schema accepted %s", doc)
		}
	}
}
