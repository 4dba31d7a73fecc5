package matrix

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Stored is the matrix as a run directory keeps it (matrix.yaml): the file's bytes, but
// with a request.body_file replaced by the body it read, inline. A resumed run or a merge
// re-reads matrix.yaml from the run directory, where the body file is not. A body that
// is not UTF-8 text cannot be written inline in YAML: then the bytes stay as they are
// and a resume needs the body file beside matrix.yaml.
func (f *File) Stored() []byte {
	var doc yaml.Node
	if yaml.Unmarshal(f.Raw, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return f.Raw
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "request" || top.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		req := top.Content[i+1]
		for j := 0; j+1 < len(req.Content); j += 2 {
			k, v := req.Content[j], req.Content[j+1]
			if k.Value != "body_file" || !utf8.Valid(f.Request.Body) {
				continue
			}
			k.Value = "body"
			k.LineComment = fmt.Sprintf("inlined from %s for the run directory", v.Value)
			v.Value, v.Tag, v.Style = string(f.Request.Body), "!!str", yaml.DoubleQuotedStyle
			var b bytes.Buffer
			enc := yaml.NewEncoder(&b)
			enc.SetIndent(2)
			if enc.Encode(&doc) != nil || enc.Close() != nil {
				return f.Raw
			}
			return b.Bytes()
		}
	}
	return f.Raw
}
