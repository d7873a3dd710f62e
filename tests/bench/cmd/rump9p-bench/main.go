// Command rump9p-bench compares rump9p with diod on the same ext2 image and
// the same 9P client, over a unix socket and TCP, and prints a table of
// medians: each workload's speed on both servers, their ratio, and each
// server's CPU per operation. It needs root (diod serves the image
// loop-mounted by the host kernel), mke2fs and diod.
//
//	go run ./tests/bench/cmd/rump9p-bench [-files 20000] [-big 1G] [-reps 3] [-only treeread,create]
//
// With -fuse it compares the host front instead: "rump9p mount" against
// e2fsprogs' fuse2fs, each on a copy of the image, through the host
// kernel's system calls (tree walk and read, create, stat, rename,
// unlink, sequential read and write+fsync); e2fsck -fn checks both images
// after.
//
// Run it on an idle machine: both servers and the client share it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/rump9p/rump9p/tests/bench"
)

func main() {
	bench.ServeEchoIfAsked()
	var cfg bench.Config
	var big, write, networks, only, keep string
	var msize uint
	var fuse bool
	var scale string
	flag.IntVar(&cfg.Tree.SmallFiles, "files", 20000, "small files (1-16 KiB) in the tree")
	flag.IntVar(&cfg.Tree.PerDir, "perdir", 200, "small files per directory")
	flag.IntVar(&cfg.Tree.WideFiles, "wide", 10000, "entries of the wide directory")
	flag.StringVar(&big, "big", "1G", "size of the big file (K, M, G suffixes)")
	flag.StringVar(&write, "write", "256M", "bytes the seqwrite workload writes")
	flag.IntVar(&cfg.Sizes.Creates, "creates", 5000, "files of the create/stat/rename/unlink workloads")
	flag.IntVar(&cfg.Sizes.Readers, "readers", 4, "connections of the parallel workload")
	flag.IntVar(&cfg.Sizes.Getattrs, "getattrs", 20000, "round trips of the getattr workload")
	flag.IntVar(&cfg.Reps, "reps", 3, "runs of each workload; the table shows medians")
	flag.StringVar(&networks, "transports", "unix,tcp", "transports to measure")
	flag.UintVar(&msize, "msize", 1<<20, "msize the client asks for (diod grants 64 KiB)")
	flag.StringVar(&only, "only", "", "comma-separated workloads to run (default: all)")
	flag.StringVar(&cfg.Server.Cache, "cache", "256M", "rump9p's buffer cache budget")
	flag.StringVar(&cfg.Server.Rump9p, "rump9p", "", "the rump9p binary (default: built from this module)")
	flag.StringVar(&scale, "scale", "", "comma-separated tree sizes (files): report how the cost per file of treewalk and treeread grows")
	flag.BoolVar(&fuse, "fuse", false, "compare the host front instead: rump9p mount against fuse2fs")
	flag.StringVar(&keep, "dir", "", "scratch directory (default: a new one in /var/tmp, removed after)")
	flag.Parse()
	var err error
	if cfg.Tree.BigSize, err = parseSize(big); err == nil {
		cfg.Sizes.WriteSize, err = parseSize(write)
	}
	if err != nil {
		fatal(err)
	}
	cfg.Tree.WriteRoom = cfg.Sizes.WriteSize
	cfg.Networks = strings.Split(networks, ",")
	cfg.Msize = uint32(msize)
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	cfg.Log = os.Stderr
	cfg.Dir = keep
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("/var/tmp", "rump9p-bench"); err != nil {
			fatal(err)
		}
		defer os.RemoveAll(cfg.Dir)
	}
	if cfg.Server.Rump9p == "" {
		cfg.Server.Rump9p = filepath.Join(cfg.Dir, "rump9p")
		if out, err := exec.Command("go", "build", "-o", cfg.Server.Rump9p, "github.com/rump9p/rump9p/cmd/rump9p").CombinedOutput(); err != nil {
			fatal(fmt.Errorf("go build: %v\n%s", err, out))
		}
	}
	compare := bench.Compare
	if fuse {
		compare = bench.CompareFUSE
	}
	if scale != "" {
		if err := scaling(cfg, compare, strings.Split(scale, ",")); err != nil {
			fatal(err)
		}
		return
	}
	res, err := compare(cfg)
	if err != nil {
		fatal(err)
	}
	res.Table(os.Stdout)
}

// scaling runs the tree workloads on trees of each size and prints the
// time and server CPU per file, to show how the cost grows with the tree
// (and, with -cache smaller than the tree, once it no longer fits).
func scaling(cfg bench.Config, compare func(bench.Config) (*bench.Result, error), sizes []string) error {
	cfg.Only = []string{"treewalk", "treeread"}
	base := cfg.Dir
	var rows [][]string
	var servers [2]string
	for _, size := range sizes {
		var n int
		if _, err := fmt.Sscan(size, &n); err != nil || n < 1 {
			return fmt.Errorf("bad -scale size %q", size)
		}
		cfg.Tree.SmallFiles = n
		cfg.Dir = filepath.Join(base, "scale-"+size)
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return err
		}
		res, err := compare(cfg)
		if err != nil {
			return err
		}
		servers = res.Servers
		for _, w := range cfg.Only {
			for _, network := range res.Networks {
				row := []string{size, w, network}
				for _, s := range res.Servers {
					m, ok := res.Median(w, network, s)
					if !ok {
						return fmt.Errorf("no sample of %s on %s", w, s)
					}
					row = append(row, fmt.Sprintf("%.1f", float64(m.Elapsed.Microseconds())/float64(m.N)),
						fmt.Sprintf("%.1f", float64(m.CPU.Microseconds())/float64(m.N)))
				}
				rows = append(rows, row)
			}
		}
		os.RemoveAll(cfg.Dir)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "files\tworkload\ttransport\t%s µs/file\t%s CPU µs/file\t%s µs/file\t%s CPU µs/file\t\n", servers[0], servers[0], servers[1], servers[1])
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	return tw.Flush()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "rump9p-bench:", err)
	os.Exit(1)
}
