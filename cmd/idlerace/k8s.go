package main

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/k8s"
	"github.com/idlerace/idlerace/matrix"
)

func newK8sCmd() *cobra.Command {
	var (
		o     k8s.Options
		file  string
		merge bool
	)
	cmd := &cobra.Command{
		Use:   "k8s --file m.yaml --shards N --image IMAGE",
		Short: "Print the Kubernetes objects that run a matrix as N shards (an Indexed Job), or with --merge the Job that merges them",
		Long: `Print, as YAML for kubectl apply, a ConfigMap with the matrix, a ReadWriteMany volume
claim for the run directories, and an Indexed Job of one pod per shard (each runs
idlerace run --shards N, taking its shard from JOB_COMPLETION_INDEX, alone on its node).
With --merge, the Job that merges the shards into runs/merged once they are complete.
The image is one built from the repository's Dockerfile.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return badInput("--file: required (the matrix to shard)")
			}
			f, err := matrix.ReadFile(file)
			if err != nil {
				return err
			}
			cells, err := f.Cells()
			if err != nil {
				return err
			}
			if o.Name == "" {
				o.Name = k8sName(file)
			}
			if o.Shards > len(cells) {
				return badInput("--shards %d: the matrix has %d cells; a shard without one would fail", o.Shards, len(cells))
			}
			o.MatrixYAML = f.Stored() // a body_file inlined: the pods have only the ConfigMap
			if err := o.Check(); err != nil {
				return usageError{err}
			}
			write := k8s.Shards
			if merge {
				write = k8s.Merge
			}
			out, err := write(o)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "the matrix file")
	fl.IntVar(&o.Shards, "shards", 0, "how many shards (pods), each on its own node")
	fl.StringVar(&o.Image, "image", "", "the idlerace image (docker build -t IMAGE . in the repository)")
	fl.StringVar(&o.Name, "name", "", "prefix of the objects' names (default: from the matrix file's name)")
	fl.StringVar(&o.Namespace, "namespace", "", "namespace of the objects (default: kubectl's current one)")
	fl.IntVar(&o.Parallelism, "parallelism", 0, "shards running at once (default: all)")
	fl.StringVar(&o.CPU, "cpu", "2", "each shard's CPU, requested and limited alike (Guaranteed QoS)")
	fl.StringVar(&o.Memory, "memory", "2Gi", "each shard's memory, requested and limited alike")
	fl.StringVar(&o.Storage, "storage", "10Gi", "size of the run directories' volume")
	fl.StringVar(&o.StorageClass, "storage-class", "", "a storage class with ReadWriteMany (default: the cluster's)")
	fl.BoolVar(&merge, "merge", false, "print the merge Job instead (apply it once the shards' Job is complete)")
	return cmd
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// k8sName makes a Kubernetes name of a matrix file's name: "real-clients.yaml" ->
// "idlerace-real-clients".
func k8sName(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	n := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(base), "-"), "-")
	if n == "" {
		n = "matrix"
	}
	n = "idlerace-" + n
	if len(n) > 40 {
		n = strings.TrimRight(n[:40], "-")
	}
	return n
}
