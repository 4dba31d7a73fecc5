package k8s

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func opts() Options {
	return Options{Name: "idlerace-m", Image: "idlerace:test", MatrixYAML: []byte("strategies: [blind, watch]\n"),
		Shards: 3, CPU: "2", Memory: "2Gi", Storage: "10Gi"}
}

// docs splits a multi-document YAML stream, each document under its comment.
func docs(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("---\n"))[1:] {
		if !bytes.HasPrefix(d, []byte("# ")) {
			t.Errorf("a document without its comment:\n%s", d)
		}
		out = append(out, d)
	}
	return out
}

// The shards' objects read back as the API types: the matrix in a ConfigMap, a
// ReadWriteMany claim, and an Indexed Job of one pod per shard with a per-index retry,
// anti-affinity between shards, Guaranteed QoS and the run's shard count; the same
// options print the same bytes.
func TestShardsAreAnIndexedJobOfOnePodPerShard(t *testing.T) {
	out, err := Shards(opts())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Shards(opts())
	if !bytes.Equal(out, again) {
		t.Error("the same options printed different YAML")
	}
	ds := docs(t, out)
	if len(ds) != 3 {
		t.Fatalf("%d documents, want ConfigMap, PersistentVolumeClaim, Job:\n%s", len(ds), out)
	}
	var cm corev1.ConfigMap
	var pvc corev1.PersistentVolumeClaim
	var job batchv1.Job
	for i, into := range []any{&cm, &pvc, &job} {
		if err := yaml.UnmarshalStrict(ds[i], into); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	if cm.Kind != "ConfigMap" || cm.Data["matrix.yaml"] != string(opts().MatrixYAML) {
		t.Errorf("ConfigMap %+v: want the matrix file, byte for byte (its hash names the shards' matrix)", cm)
	}
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
		t.Errorf("claim access modes %v, want ReadWriteMany", pvc.Spec.AccessModes)
	}
	s := job.Spec
	if *s.CompletionMode != batchv1.IndexedCompletion || *s.Completions != 3 || *s.Parallelism != 3 || *s.BackoffLimitPerIndex != 1 {
		t.Errorf("job spec %+v: want Indexed, 3 completions, 3 at once, a retry per index", s)
	}
	pod := s.Template.Spec
	aa := pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if len(aa) != 1 || aa[0].TopologyKey != "kubernetes.io/hostname" || aa[0].LabelSelector.MatchLabels["idlerace/role"] != "shard" ||
		s.Template.Labels["idlerace/role"] != "shard" {
		t.Errorf("anti-affinity %+v: want no two shards on one node", aa)
	}
	c := pod.Containers[0]
	if c.Resources.Requests.Cpu().Cmp(*c.Resources.Limits.Cpu()) != 0 || c.Resources.Requests.Memory().Cmp(*c.Resources.Limits.Memory()) != 0 {
		t.Errorf("resources %+v: want requests equal to limits", c.Resources)
	}
	if args := strings.Join(c.Args, " "); !strings.Contains(args, "--shards 3") || !strings.Contains(args, "--out /runs/shard-$(SHARD)") {
		t.Errorf("args %q: want the shard count and a run directory named by the index", args)
	}
}

// The merge Job merges every shard's run directory, by name.
func TestMergeJobListsEveryShard(t *testing.T) {
	out, err := Merge(opts())
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(docs(t, out)[0], &job); err != nil {
		t.Fatal(err)
	}
	want := []string{"merge", "/runs/merged", "/runs/shard-0", "/runs/shard-1", "/runs/shard-2"}
	if got := job.Spec.Template.Spec.Containers[0].Args; !slices.Equal(got, want) {
		t.Errorf("merge args %v, want %v", got, want)
	}
}

func TestOptionsAreCheckedByName(t *testing.T) {
	for _, c := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.Name = "Bad_Name" }, "--name"},
		{func(o *Options) { o.Image = "" }, "--image"},
		{func(o *Options) { o.Shards = 0 }, "--shards 0"},
		{func(o *Options) { o.Parallelism = 4 }, "--parallelism 4"},
		{func(o *Options) { o.CPU = "two" }, `--cpu "two"`},
	} {
		o := opts()
		c.edit(&o)
		if err := o.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want an error naming %s", err, c.want)
		}
	}
}
