package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// streams are a command's standard streams.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// imageSpec describes an image command for imageCommand.
type imageSpec struct {
	use, short, long string
	args             cobra.PositionalArgs
	progress         bool
}

// imageCommand makes a command that runs fn in a session and closes every
// image it opened (syncing and unmounting them) whatever happens.
func imageCommand(st streams, spec imageSpec, fn func(s *session, args []string) error) *cobra.Command {
	f := &imageFlags{}
	cmd := &cobra.Command{
		Use:   spec.use,
		Short: spec.short,
		Long:  spec.long,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd, f, st.in, st.out, st.err)
			if err != nil {
				return err
			}
			err = fn(s, args)
			cerr := s.close()
			if err != nil {
				return err
			}
			return cerr
		},
	}
	cmd.Args = spec.args
	f.register(cmd, spec.progress)
	return cmd
}

// imageCommands are the commands that work on an image without mounting.
func imageCommands(stdin io.Reader, stdout, stderr io.Writer) []*cobra.Command {
	st := streams{stdin, stdout, stderr}
	return []*cobra.Command{
		newLsCmd(st), newCatCmd(st), newStatCmd(st), newDfCmd(st), newInfoCmd(st),
		newFindCmd(st), newDuCmd(st), newCpCmd(st), newMvCmd(st), newRmCmd(st),
		newMkdirCmd(st), newRmdirCmd(st), newLnCmd(st), newChmodCmd(st), newChownCmd(st),
		newTouchCmd(st), newTarCmd(st), newUntarCmd(st),
	}
}

// helpWithoutH gives cmd a --help flag without -h, which cmd uses for
// something else (ls -h, df -h, du -h, chown -h), as cobra cannot.
func helpWithoutH(cmd *cobra.Command) {
	cmd.Flags().Bool("help", false, "help for "+cmd.Name())
}

// progressWanted reports whether a progress bar would be shown.
func (s *session) progressWanted() bool {
	return s.flags.progress == "always" || (s.flags.progress == "auto" && isTerminal(s.stderr))
}

// eachImage runs fn on the image of every argument (IMAGE[:PATH]),
// reporting its errors.
func (s *session) eachImage(args []string, write bool, fn func(f *ukfs.FS, l location) error) {
	for _, arg := range args {
		l := s.locate(arg, true)
		f, err := s.fs(l, write)
		if err == nil {
			err = fn(f, l)
		}
		if err != nil {
			s.report(imgErr(l, err))
		}
	}
}

// ---- ls

type lsOpts struct {
	long, recursive, all, human, one, dir bool
}

func newLsCmd(st streams) *cobra.Command {
	var o lsOpts
	cmd := imageCommand(st, imageSpec{
		use:   "ls [-lRah1d] IMAGE[:PATH]...",
		short: "list directories of an image",
		long: `Lists the files of each PATH of an image (its root when PATH is missing), as
ls(1) does: sorted by name, dot files only with -a, one name per line when
standard output is not a terminal (or with -1), in columns when it is.
Owners are numeric: an image carries no user database.`,
		args: minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			return ls(s, &o, f, l, len(args) > 1)
		})
		return nil
	})
	fl := cmd.Flags()
	fl.BoolVarP(&o.long, "long", "l", false, "long listing: mode, links, owners, size, time")
	fl.BoolVarP(&o.recursive, "recursive", "R", false, "list subdirectories recursively")
	fl.BoolVarP(&o.all, "all", "a", false, "list names starting with a dot, and . and ..")
	fl.BoolVarP(&o.human, "human-readable", "h", false, "sizes in K, M, G with -l")
	fl.BoolVarP(&o.one, "one", "1", false, "one name per line")
	fl.BoolVarP(&o.dir, "directory", "d", false, "list directories themselves, not their contents")
	helpWithoutH(cmd)
	return cmd
}

// lsEntry is one line of a listing.
type lsEntry struct {
	name string
	a    vnodeops.Attr
	link string
}

func ls(s *session, o *lsOpts, f *ukfs.FS, l location, header bool) error {
	a, err := f.Attr(l.path, false)
	if err != nil {
		return err
	}
	if !a.IsDir() || o.dir {
		e := lsEntry{name: l.String(), a: a}
		if a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK {
			e.link, _ = f.Readlink(l.path)
		}
		s.printEntries(o, []lsEntry{e}, false)
		return nil
	}
	return lsDir(s, o, f, l, header, true)
}

func lsDir(s *session, o *lsOpts, f *ukfs.FS, l location, header, first bool) error {
	names, err := f.Names(l.path)
	if err != nil {
		return err
	}
	if o.all {
		names = append([]string{".", ".."}, names...)
	}
	var ents []lsEntry
	var subdirs []string
	for _, n := range names {
		if !o.all && strings.HasPrefix(n, ".") {
			continue
		}
		p := path.Join(l.path, n)
		a, err := f.Attr(p, false)
		if err != nil {
			s.report(imgErr(l, err))
			continue
		}
		e := lsEntry{name: n, a: a}
		if a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK {
			e.link, _ = f.Readlink(p)
		}
		ents = append(ents, e)
		if a.IsDir() && n != "." && n != ".." {
			subdirs = append(subdirs, p)
		}
	}
	if header || o.recursive {
		if !first {
			fmt.Fprintln(s.stdout)
		}
		fmt.Fprintf(s.stdout, "%s:\n", l)
	}
	s.printEntries(o, ents, true)
	if o.recursive {
		for _, d := range subdirs {
			if err := lsDir(s, o, f, l.at(d), true, false); err != nil {
				s.report(imgErr(l, err))
			}
		}
	}
	return nil
}

func (s *session) printEntries(o *lsOpts, ents []lsEntry, total bool) {
	if !o.long {
		names := make([]string, len(ents))
		for i, e := range ents {
			names[i] = e.name
		}
		if o.one || !isTerminal(s.stdout) {
			for _, n := range names {
				fmt.Fprintln(s.stdout, n)
			}
			return
		}
		printColumns(s.stdout, names, termWidth(s.stdout))
		return
	}
	if total {
		var blocks uint64
		for _, e := range ents {
			blocks += e.a.Blocks
		}
		fmt.Fprintf(s.stdout, "total %d\n", (blocks+1)/2)
	}
	tw := tabwriter.NewWriter(s.stdout, 0, 0, 0, ' ', tabwriter.AlignRight)
	now := time.Now()
	for _, e := range ents {
		size := strconv.FormatUint(e.a.Size, 10)
		if o.human {
			size = humanSize(e.a.Size)
		}
		if t := e.a.Mode & vnodeops.S_IFMT; t == vnodeops.S_IFCHR || t == vnodeops.S_IFBLK {
			size = fmt.Sprintf("%d, %d", unix.Major(e.a.Rdev), unix.Minor(e.a.Rdev))
		}
		name := e.name
		if e.link != "" {
			name += " -> " + e.link
		}
		// The name follows the last tab: tabwriter leaves it unaligned.
		fmt.Fprintf(tw, "%s\t %d\t %d\t %d\t %s\t %s\t %s\n", modeString(e.a.Mode), e.a.Nlink, e.a.UID, e.a.GID, size, lsTime(e.a.Mtime, now), name)
	}
	tw.Flush()
}

// lsTime formats a modification time as ls -l does: the time of day for
// the last six months, the year otherwise.
func lsTime(ns int64, now time.Time) string {
	t := time.Unix(0, ns)
	if now.Sub(t) < 182*24*time.Hour && t.Sub(now) < time.Hour {
		return t.Format("Jan _2 15:04")
	}
	return t.Format("Jan _2  2006")
}

// modeString formats a mode as ls -l does (drwxr-sr-t).
func modeString(m uint32) string {
	var b [10]byte
	b[0] = "?pc?d?b?-?l?s???"[(m&vnodeops.S_IFMT)>>12]
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		} else {
			b[i+1] = '-'
		}
	}
	special := func(i int, bit uint32, set, unset byte) {
		if m&bit != 0 {
			if b[i] == '-' {
				b[i] = unset
			} else {
				b[i] = set
			}
		}
	}
	special(3, vnodeops.S_ISUID, 's', 'S')
	special(6, vnodeops.S_ISGID, 's', 'S')
	special(9, vnodeops.S_ISVTX, 't', 'T')
	return string(b[:])
}

// humanSize formats n bytes as ls -h and df -h do: 1023, 1.0K, 12K, 3.4M,
// rounding up.
func humanSize(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10)
	}
	v := float64(n)
	units := "KMGTPE"
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 10 {
		v = math.Ceil(v*10) / 10
		if v < 10 {
			return fmt.Sprintf("%.1f%c", v, units[i])
		}
	}
	return fmt.Sprintf("%.0f%c", math.Ceil(v), units[i])
}

func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	return 80
}

// printColumns prints names in columns filled top to bottom, as ls -C.
func printColumns(w io.Writer, names []string, width int) {
	if len(names) == 0 {
		return
	}
	widest := 0
	for _, n := range names {
		widest = max(widest, len(n))
	}
	colw := widest + 2
	cols := max(1, width/colw)
	rows := (len(names) + cols - 1) / cols
	for r := 0; r < rows; r++ {
		var line strings.Builder
		for c := 0; c < cols; c++ {
			i := c*rows + r
			if i >= len(names) {
				break
			}
			if c*rows+r+rows < len(names) {
				fmt.Fprintf(&line, "%-*s", colw, names[i])
			} else {
				line.WriteString(names[i])
			}
		}
		fmt.Fprintln(w, line.String())
	}
}

// ---- cat

func newCatCmd(st streams) *cobra.Command {
	return imageCommand(st, imageSpec{
		use:   "cat IMAGE:PATH...",
		short: "write files of an image to standard output",
		args:  minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			file, err := f.OpenFile(l.path, os.O_RDONLY, 0)
			if err != nil {
				return err
			}
			defer file.Close()
			_, err = io.Copy(s.stdout, file)
			return err
		})
		return nil
	})
}

// ---- stat

func newStatCmd(st streams) *cobra.Command {
	var follow bool
	cmd := imageCommand(st, imageSpec{
		use:   "stat [-L] IMAGE:PATH...",
		short: "show the attributes of files of an image",
		args:  minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			a, err := f.Attr(l.path, follow)
			if err != nil {
				return err
			}
			name := l.String()
			if a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK {
				if t, err := f.Readlink(l.path); err == nil {
					name += " -> " + t
				}
			}
			w := s.stdout
			fmt.Fprintf(w, "  File: %s\n", name)
			fmt.Fprintf(w, "  Size: %-12d Blocks: %-10d IO Block: %-6d %s\n", a.Size, a.Blocks, a.BlkSize, typeName(a.Mode))
			fmt.Fprintf(w, " Inode: %-12d Links: %d", a.Ino, a.Nlink)
			if t := a.Mode & vnodeops.S_IFMT; t == vnodeops.S_IFCHR || t == vnodeops.S_IFBLK {
				fmt.Fprintf(w, "  Device type: %d,%d", unix.Major(a.Rdev), unix.Minor(a.Rdev))
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "Access: (%04o/%s)  Uid: %d  Gid: %d\n", a.Mode&vnodeops.PermMask, modeString(a.Mode), a.UID, a.GID)
			for _, t := range []struct {
				label string
				ns    int64
			}{{"Access", a.Atime}, {"Modify", a.Mtime}, {"Change", a.Ctime}, {" Birth", a.Btime}} {
				v := "-"
				if t.ns != 0 || t.label != " Birth" {
					v = time.Unix(0, t.ns).Format("2006-01-02 15:04:05.000000000 -0700")
				}
				fmt.Fprintf(w, "%s: %s\n", t.label, v)
			}
			return nil
		})
		return nil
	})
	cmd.Flags().BoolVarP(&follow, "dereference", "L", false, "follow a symbolic link")
	return cmd
}

// typeName names a file type as stat(1) does.
func typeName(m uint32) string {
	switch m & vnodeops.S_IFMT {
	case vnodeops.S_IFREG:
		return "regular file"
	case vnodeops.S_IFDIR:
		return "directory"
	case vnodeops.S_IFLNK:
		return "symbolic link"
	case vnodeops.S_IFCHR:
		return "character special file"
	case vnodeops.S_IFBLK:
		return "block special file"
	case vnodeops.S_IFIFO:
		return "fifo"
	case vnodeops.S_IFSOCK:
		return "socket"
	}
	return "unknown"
}

// ---- df

func newDfCmd(st streams) *cobra.Command {
	var human, inodes bool
	cmd := imageCommand(st, imageSpec{
		use:   "df [-hi] IMAGE...",
		short: "show the space and inodes used and free in images",
		args:  minArgs(1),
	}, func(s *session, args []string) error {
		rows := [][]string{{"Filesystem", "Type", "1K-blocks", "Used", "Available", "Use%"}}
		if inodes {
			rows[0] = []string{"Filesystem", "Type", "Inodes", "IUsed", "IFree", "IUse%"}
		}
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			info, err := f.Info()
			if err != nil {
				return err
			}
			sv := info.Statvfs
			if inodes {
				used := sv.Files - sv.Ffree
				rows = append(rows, []string{l.prefix, info.Type, fmt.Sprint(sv.Files), fmt.Sprint(used), fmt.Sprint(sv.Ffree), percent(used, used+sv.Ffree)})
				return nil
			}
			unit := uint64(sv.Frsize)
			total, used, avail := sv.Blocks*unit, (sv.Blocks-sv.Bfree)*unit, sv.Bavail*unit
			show := func(n uint64) string { return strconv.FormatUint((n+1023)/1024, 10) }
			if human {
				show = humanSize
			}
			rows = append(rows, []string{l.prefix, info.Type, show(total), show(used), show(avail), percent(used, used+avail)})
			return nil
		})
		printTable(s.stdout, rows, 2)
		return nil
	})
	cmd.Flags().BoolVarP(&human, "human-readable", "h", false, "sizes in K, M, G")
	cmd.Flags().BoolVarP(&inodes, "inodes", "i", false, "inodes instead of blocks")
	helpWithoutH(cmd)
	return cmd
}

// printTable prints rows in columns, the first left columns aligned
// left and the others right, as df does.
func printTable(w io.Writer, rows [][]string, left int) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			if i > 0 {
				line.WriteByte(' ')
			}
			if i < left {
				fmt.Fprintf(&line, "%-*s", widths[i], c)
			} else {
				fmt.Fprintf(&line, "%*s", widths[i], c)
			}
		}
		fmt.Fprintln(w, line.String())
	}
}

// percent is df's Use%: rounded up, "-" when there is nothing.
func percent(used, of uint64) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatUint((used*100+of-1)/of, 10) + "%"
}

// ---- info

func newInfoCmd(st streams) *cobra.Command {
	return imageCommand(st, imageSpec{
		use:   "info IMAGE...",
		short: "summarise the file system of images (after dumpe2fs -h)",
		long: `Prints the type, geometry and counts of each image's file system, and the
driver's own summary of its layout where the driver gives one.`,
		args: minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			info, err := f.Info()
			if err != nil {
				return err
			}
			sv := info.Statvfs
			part := info.Partition
			if part == "" {
				part = "whole image"
			}
			flags := "read-write"
			if info.ReadOnly {
				flags = "read-only"
			}
			tw := tabwriter.NewWriter(s.stdout, 0, 0, 1, ' ', 0)
			for _, kv := range [][2]string{
				{"Image", info.Image},
				{"Partition", part},
				{"Type", info.Type},
				{"Mounted", flags},
				{"Block size", fmt.Sprint(sv.Bsize)},
				{"Fragment size", fmt.Sprint(sv.Frsize)},
				{"Block count", fmt.Sprint(sv.Blocks)},
				{"Free blocks", fmt.Sprint(sv.Bfree)},
				{"Available blocks", fmt.Sprint(sv.Bavail)},
				{"Inode count", fmt.Sprint(sv.Files)},
				{"Free inodes", fmt.Sprint(sv.Ffree)},
				{"Longest name", fmt.Sprint(sv.Namemax)},
			} {
				fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
			}
			if err := tw.Flush(); err != nil || len(info.Layout) == 0 {
				return err
			}
			// The driver's own fields, in the format's terms (a block
			// count there may differ from statvfs's).
			fmt.Fprintf(s.stdout, "\n%s layout:\n", info.Type)
			for _, fl := range info.Layout {
				fmt.Fprintf(tw, "  %s:\t%s\n", fl.Key, fl.Value)
			}
			return tw.Flush()
		})
		return nil
	})
}
