// Package k8s writes the Kubernetes objects that run a matrix as shards: a ConfigMap
// with the matrix file, a PersistentVolumeClaim for the run directories, an Indexed Job
// of one pod per shard, and a Job that merges them. Objects are k8s.io/api's own types,
// marshalled by sigs.k8s.io/yaml (the API server's field names and omissions), each
// document under a comment that says what it is for. The output depends only on the
// options: the same matrix and options print the same bytes.
package k8s

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Options say what to run and where.
type Options struct {
	Name       string // prefix of every object's name (DNS-1123)
	Namespace  string // "" for the current one
	Image      string // an image built from the repository's Dockerfile
	MatrixYAML []byte
	Shards     int
	// Parallelism is how many shards run at once (0: all of them).
	Parallelism int
	CPU, Memory string // each shard's requests and limits, equal: Guaranteed QoS
	Storage     string // the run directories' volume size
	// StorageClass names a class that offers ReadWriteMany ("" for the default).
	StorageClass string
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Check says what is wrong with o, naming the option.
func (o *Options) Check() error {
	switch {
	case !dnsLabel.MatchString(o.Name) || len(o.Name) > 40:
		return fmt.Errorf("--name %q: want lowercase letters, digits and '-', at most 40, starting and ending alphanumeric (a Kubernetes name)", o.Name)
	case o.Image == "":
		return fmt.Errorf("--image: required (an image built from the repository's Dockerfile)")
	case o.Shards < 1 || o.Shards > 10_000:
		return fmt.Errorf("--shards %d: want 1 to 10000", o.Shards)
	case o.Parallelism < 0 || o.Parallelism > o.Shards:
		return fmt.Errorf("--parallelism %d: want 1 to the shard count %d (0: all)", o.Parallelism, o.Shards)
	}
	for flag, q := range map[string]string{"--cpu": o.CPU, "--memory": o.Memory, "--storage": o.Storage} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("%s %q: want a Kubernetes quantity (2, 500m, 1Gi)", flag, q)
		}
	}
	return nil
}

const (
	matrixDir = "/matrix"
	runsDir   = "/runs"
)

// Shards writes the ConfigMap, the volume claim and the Indexed Job.
func Shards(o Options) ([]byte, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: o.meta(o.Name + "-matrix"),
		Data:       map[string]string{"matrix.yaml": string(o.MatrixYAML)},
	}
	if err := doc(&b, cm, "The matrix every shard expands the same way, mounted at "+matrixDir+"/matrix.yaml."); err != nil {
		return nil, err
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: o.meta(o.Name + "-runs"),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(o.Storage)}},
		},
	}
	if o.StorageClass != "" {
		pvc.Spec.StorageClassName = &o.StorageClass
	}
	if err := doc(&b, pvc, "Where each shard writes its run directory ("+runsDir+"/shard-I) and the merge reads them: files, whole,",
		"not pod logs, which the kubelet rotates (10 MiB by default) and a tarball would outgrow.",
		"ReadWriteMany, because shards on different nodes write at once (NFS, CephFS, EFS, Filestore)."); err != nil {
		return nil, err
	}
	par := int32(o.Shards)
	if o.Parallelism > 0 {
		par = int32(o.Parallelism)
	}
	completions := int32(o.Shards)
	indexed := batchv1.IndexedCompletion
	perIndex := int32(1)
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: o.meta(o.Name + "-shards"),
		Spec: batchv1.JobSpec{
			CompletionMode:       &indexed,
			Completions:          &completions,
			Parallelism:          &par,
			BackoffLimitPerIndex: &perIndex,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: o.labels("shard")},
				Spec:       o.shardPod(),
			},
		},
	}
	if err := doc(&b, job, fmt.Sprintf("%d shards of the matrix, one pod each (completionMode Indexed: the pod's", o.Shards),
		"JOB_COMPLETION_INDEX is its shard). backoffLimitPerIndex 1: a shard that fails is retried",
		"once on its own, and one bad node does not restart the others. Pod anti-affinity keeps",
		"two shards off one node, and equal requests and limits (Guaranteed QoS) keep a shard's",
		"cores its own: a cell's close is precise to a millisecond only alone on its machine."); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Merge writes the Job that merges the shards' run directories into runs/merged, to be
// applied once the shards' Job is complete.
func Merge(o Options) ([]byte, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	args := []string{"merge", runsDir + "/merged"}
	for i := 0; i < o.Shards; i++ {
		args = append(args, runsDir+"/shard-"+strconv.Itoa(i))
	}
	backoff := int32(0)
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: o.meta(o.Name + "-merge"),
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: o.labels("merge")},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "merge", Image: o.Image, Args: args,
						VolumeMounts: []corev1.VolumeMount{{Name: "runs", MountPath: runsDir}},
					}},
					Volumes: []corev1.Volume{o.runsVolume()},
				},
			},
		},
	}
	var b bytes.Buffer
	err := doc(&b, job, "Merges the shards into "+runsDir+"/merged (summary.json, cells/*.hlog, the matrix's own",
		"order and cell IDs); apply it when the shards' Job is complete:",
		"  kubectl wait --for=condition=complete job/"+o.Name+"-shards --timeout=24h",
		"It refuses shards of another matrix or build; a missing shard makes the merge partial.")
	return b.Bytes(), err
}

func (o Options) shardPod() corev1.PodSpec {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(o.CPU), corev1.ResourceMemory: resource.MustParse(o.Memory)}
	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: o.labels("shard")},
				TopologyKey:   "kubernetes.io/hostname",
			}},
		}},
		Containers: []corev1.Container{{
			Name:  "idlerace",
			Image: o.Image,
			// idlerace reads its shard from JOB_COMPLETION_INDEX, which the Job
			// controller sets; SHARD names the run directory after it.
			Env: []corev1.EnvVar{{Name: "SHARD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
				FieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}},
			Args: []string{"run", "-f", matrixDir + "/matrix.yaml", "--shards", strconv.Itoa(o.Shards),
				"--out", runsDir + "/shard-$(SHARD)", "-q", "--no-report"},
			Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
			// The latency path's netem and the wire view's packet capture, inside the
			// pod's own network namespace.
			SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "matrix", MountPath: matrixDir, ReadOnly: true},
				{Name: "runs", MountPath: runsDir},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "matrix", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: o.Name + "-matrix"}}}},
			o.runsVolume(),
		},
	}
}

func (o Options) runsVolume() corev1.Volume {
	return corev1.Volume{Name: "runs", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.Name + "-runs"}}}
}

func (o Options) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: o.labels("")}
}

func (o Options) labels(role string) map[string]string {
	l := map[string]string{"app.kubernetes.io/name": "idlerace", "idlerace/matrix": o.Name}
	if role != "" {
		l["idlerace/role"] = role
	}
	return l
}

// doc writes one YAML document: the comment, then the object.
func doc(b *bytes.Buffer, obj any, comment ...string) error {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	b.WriteString("---\n")
	for _, c := range comment {
		b.WriteString(strings.TrimRight("# "+c, " ") + "\n")
	}
	// creationTimestamp: null and status: {} are the API types' zero values; they say
	// nothing in an object to apply.
	data = bytes.ReplaceAll(data, []byte("  creationTimestamp: null\n"), nil)
	data = bytes.ReplaceAll(data, []byte("status: {}\n"), nil)
	b.Write(data)
	return nil
}
