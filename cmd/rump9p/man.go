package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd makes "rump9p man DIR": one man page per command, generated
// from the command tree itself, so the pages never drift from --help.
func newManCmd(root *cobra.Command, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "write the man pages of every command into DIR",
		Long: `Writes one man page (section 1) per command into DIR, which is created if
missing: rump9p.1, rump9p-serve.1, rump9p-cp.1, ... Read one with
man -l DIR/rump9p-cp.1.`,
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "RUMP9P", Section: "1", Source: "rump9p " + version, Manual: "rump9p manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
			fmt.Fprintf(stdout, "man pages written to %s\n", dir)
			return nil
		},
	}
}
