package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/ffs"
)

// checkers are the consistency checks rump9p has, by driver name. Other
// formats have checkers of their own on Debian (e2fsck, fsck.fat).
var checkers = map[string]func(io.ReaderAt, int64) ([]string, error){
	"ffs": ffs.Check,
}

// newFsckCmd is "rump9p fsck": a read-only consistency check of an
// unmounted image, exit 0 when clean and 1 with the findings listed.
func newFsckCmd(stdout io.Writer) *cobra.Command {
	var typ, partition string
	var no, yes bool
	cmd := &cobra.Command{
		Use:   "fsck [-n] [--type ffs] [--partition P] IMAGE",
		Short: "check an unmounted FFS image and report what is wrong",
		Long: `Checks the file system on IMAGE without changing it, in the spirit of
fsck_ffs's passes: blocks referenced at most once and inside the file system,
free maps equal to the references, every summary exact, link counts, directory
structure (".", "..", reachability from the root) and the clean flag.

Exit status: 0 clean, 1 findings (listed one per line) or an unreadable image,
2 usage. The image is opened read-only and locked shared, so a rump9p that has
it open read-write makes fsck fail rather than read a changing image. Repairs
(-y) are not implemented. FFS only: for ext2/3/4 use e2fsck -fn, for FAT
fsck.fat -n.`,
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if yes {
				return usagef("-y: repairs are not implemented; -n (check only) is the default")
			}
			return fsck(stdout, args[0], typ, partition)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&no, "no", "n", true, "check only, change nothing (the default)")
	f.BoolVarP(&yes, "yes", "y", false, "repair (not implemented)")
	f.StringVar(&typ, "type", "auto", "file system type: ffs, or auto to recognise it")
	f.StringVar(&partition, "partition", "", `partition: "" whole image, auto, or a number`)
	return cmd
}

func fsck(stdout io.Writer, image, typ, partition string) error {
	dev, err := blkdev.Open(image, true)
	if err != nil {
		return err
	}
	win, err := blkdev.SelectPartition(dev, partition, nil)
	if err != nil {
		dev.Close()
		return err
	}
	defer win.Close()
	if typ == "auto" {
		if typ, err = vnodeops.Probe(win, win.Size()); err != nil {
			return fmt.Errorf("%s: %w", image, err)
		}
	}
	check, ok := checkers[typ]
	if !ok {
		return usagef("no checker for %s (rump9p checks ffs; use e2fsck -fn for ext2/3/4, fsck.fat -n for FAT)", typ)
	}
	findings, err := check(win, win.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		return exitError(exitFailed, fmt.Errorf("%s: %d findings", image, len(findings)))
	}
	fmt.Fprintf(stdout, "%s: clean (%s)\n", image, typ)
	return nil
}
