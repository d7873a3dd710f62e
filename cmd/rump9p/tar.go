package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// xattrPrefix starts the PAX records that carry extended attributes
// (GNU tar and bsdtar read them).
const xattrPrefix = "SCHILY.xattr."

func newTarCmd(st streams) *cobra.Command {
	var file string
	cmd := imageCommand(st, imageSpec{
		use:   "tar [-f FILE] IMAGE[:PATH]...",
		short: "write a tar archive of trees of an image",
		long: `Writes a tar archive (POSIX pax format) of each PATH and everything below it to
standard output, or to FILE with -f. Members are named after PATH's last
element (./ for the root). Modes, numeric owners, nanosecond times, symbolic
and hard links, devices, FIFOs and extended attributes (SCHILY.xattr records)
are kept; names of any length are (pax path records). Sockets are skipped.
Sparse files keep their holes (GNU's pax sparse format 1.0, which GNU tar,
bsdtar and Go read).`,
		args:     minArgs(1),
		progress: true,
	}, func(s *session, args []string) error {
		out := s.stdout
		if file != "" && file != "-" {
			f, err := os.Create(file)
			if err != nil {
				s.report(err)
				return nil
			}
			defer func() {
				if err := f.Close(); err != nil {
					s.report(err)
				}
			}()
			out = f
		} else if isTerminal(out) {
			return fmt.Errorf("refusing to write a tar archive to a terminal (redirect it, or use -f FILE)")
		}
		tw := tar.NewWriter(out)
		type job struct {
			t    *imageTree
			p    string
			name string
		}
		var jobs []job
		var total int64 = -1
		if s.progressWanted() {
			total = 0
		}
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			t := &imageTree{fs: f, loc: l}
			name := path.Base(l.path)
			if l.path == "/" {
				name = "."
			}
			jobs = append(jobs, job{t, l.path, name})
			if total >= 0 {
				total += treeBytes(t, l.path, true)
			}
			return nil
		})
		a := &archiver{s: s, out: out, tw: tw, links: map[uint64]string{}, prog: s.newProgress("tar", total)}
		for _, j := range jobs {
			a.t = j.t
			if err := a.add(j.p, j.name); err != nil {
				s.report(err)
			}
		}
		a.prog.finish()
		if err := tw.Close(); err != nil {
			s.report(err)
		}
		return nil
	})
	cmd.Flags().StringVarP(&file, "file", "f", "", "write the archive to `FILE` (- for standard output)")
	return cmd
}

// archiver writes trees of an image into a tar stream.
type archiver struct {
	s     *session
	t     *imageTree
	out   io.Writer // under tw, for the headers tw cannot write
	tw    *tar.Writer
	links map[uint64]string // inode with several links -> its first name
	prog  *progress
}

// add archives p as name, and what is below it. An error writing the
// archive ends it; an error reading one file is reported and skipped.
func (a *archiver) add(p, name string) error {
	at, err := a.t.lstat(p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{
		Name:       name,
		Mode:       int64(at.Mode & vnodeops.PermMask),
		Uid:        int(at.UID),
		Gid:        int(at.GID),
		ModTime:    time.Unix(0, at.Mtime),
		AccessTime: time.Unix(0, at.Atime),
		ChangeTime: time.Unix(0, at.Ctime),
		Format:     tar.FormatPAX,
	}
	if names, err := a.t.listxattr(p); err == nil {
		for _, n := range names {
			if v, err := a.t.getxattr(p, n); err == nil {
				if hdr.PAXRecords == nil {
					hdr.PAXRecords = map[string]string{}
				}
				hdr.PAXRecords[xattrPrefix+n] = string(v)
			}
		}
	}
	switch at.Mode & vnodeops.S_IFMT {
	case vnodeops.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
	case vnodeops.S_IFREG:
		if first, ok := a.links[at.Ino]; ok && at.Nlink > 1 {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			break
		}
		if at.Nlink > 1 {
			a.links[at.Ino] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(at.Size)
	case vnodeops.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = a.t.readlink(p); err != nil {
			return err
		}
	case vnodeops.S_IFCHR, vnodeops.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if at.Mode&vnodeops.S_IFMT == vnodeops.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(at.Rdev)), int64(unix.Minor(at.Rdev))
	case vnodeops.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		fmt.Fprintf(a.s.stderr, "%s: %s: socket not archived\n", a.s.name, a.t.show(p))
		return nil
	}
	if hdr.Typeflag == tar.TypeReg {
		// Open before the header goes out: a file that cannot be read
		// is left out rather than written half.
		in, err := a.t.open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		if at.Blocks*512 < at.Size && at.UID < 1<<21 && at.GID < 1<<21 {
			if err := a.addSparse(hdr, in); err != nil {
				return err
			}
			a.prog.file()
			return nil
		}
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(a.tw, io.TeeReader(in, a.prog))
		if err == nil && n != hdr.Size {
			err = fmt.Errorf("%s: size changed while archiving", a.t.show(p))
		}
		if err != nil {
			return err
		}
	} else if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	a.prog.file()
	if hdr.Typeflag != tar.TypeDir {
		return nil
	}
	names, err := a.t.names(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		child := path.Join(name, n)
		if err := a.add(path.Join(p, n), child); err != nil {
			var pe *fs.PathError
			if !errors.As(err, &pe) {
				return err // the archive itself failed
			}
			a.s.report(err)
		}
	}
	return nil
}

// ---- untar

func newUntarCmd(st streams) *cobra.Command {
	var file string
	cmd := imageCommand(st, imageSpec{
		use:   "untar [-f FILE] IMAGE[:DIR]",
		short: "extract a tar archive into an image",
		long: `Extracts a tar archive (ustar, pax or GNU; from standard input, or FILE with
-f) into DIR of the image, making missing directories. Modes, times, symbolic
and hard links, devices and FIFOs are restored, and owners when acting as root
(the default). Members named outside DIR (an absolute path or ..) are
refused. Holes of sparse members stay holes. Extended attributes
(SCHILY.xattr records) are written where the file system keeps them.`,
		args:     exactArgs(1),
		progress: true,
	}, func(s *session, args []string) error {
		in := s.stdin
		var size int64 = -1
		if file != "" && file != "-" {
			f, err := os.Open(file)
			if err != nil {
				s.report(err)
				return nil
			}
			defer f.Close()
			in = f
		}
		if f, ok := in.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size = fi.Size()
			}
		}
		l := s.locate(args[0], true)
		f, err := s.fs(l, true)
		if err != nil {
			s.report(err)
			return nil
		}
		prog := s.newProgress("untar", size)
		defer prog.finish()
		x := &extractor{s: s, f: f, l: l, t: &imageTree{fs: f, loc: l}, prog: prog}
		if err := x.run(io.TeeReader(in, prog)); err != nil {
			s.report(err)
		}
		return nil
	})
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the archive from `FILE` (- for standard input)")
	return cmd
}

// extractor writes the members of a tar stream into a directory of an
// image.
type extractor struct {
	s          *session
	f          *ukfs.FS
	l          location
	t          *imageTree
	prog       *progress
	dirs       []dirTimes
	warnedXatt bool
}

type dirTimes struct {
	p            string
	atime, mtime int64
}

func (x *extractor) run(in io.Reader) error {
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		if err := x.extract(tr, hdr); err != nil {
			if fatal(err) {
				return err
			}
			x.s.report(err)
		}
		x.prog.file()
	}
	// Directories' times last, deepest first, once nothing more goes in.
	slices.Reverse(x.dirs)
	for _, d := range x.dirs {
		if err := x.t.lchtimes(d.p, d.atime, d.mtime); err != nil {
			x.s.report(err)
		}
	}
	return nil
}

// fatal reports whether an error ends an extraction rather than one
// member: a broken archive, a full, read-only or failing image.
func fatal(err error) bool {
	switch errnoOf(err) {
	case 0, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO:
		return true
	}
	return false
}

// member returns the path in the image of an archive member name, or an
// error when it would land outside the directory.
func (x *extractor) member(name string) (string, error) {
	clean := path.Clean("/" + name)
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("member %q: names a path outside %s (..); skipped", name, x.l)
		}
	}
	return path.Join(x.l.path, clean), nil
}

func (x *extractor) extract(tr *tar.Reader, hdr *tar.Header) error {
	p, err := x.member(hdr.Name)
	if err != nil {
		x.s.report(err)
		return nil
	}
	if dir := path.Dir(p); dir != p {
		if err := x.f.MkdirAll(dir, 0o755); err != nil {
			return imgErr(x.l, err)
		}
	}
	mode := uint32(hdr.Mode) & vnodeops.PermMask
	switch hdr.Typeflag {
	case tar.TypeDir:
		err := x.t.mkdir(p, mode|0o700)
		if errors.Is(err, fs.ErrExist) {
			if a, serr := x.t.lstat(p); serr == nil && a.IsDir() {
				err = nil
			}
		}
		if err != nil {
			return err
		}
	case tar.TypeReg, tar.TypeGNUSparse:
		x.replace(p)
		out, err := x.t.create(p, mode)
		if err != nil {
			return err
		}
		if err := copyData(out, tr, isSparse(hdr), nil); err != nil {
			out.Close()
			return err
		}
		if err := out.Truncate(hdr.Size); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		x.replace(p)
		if err := x.t.symlink(hdr.Linkname, p); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := x.member(hdr.Linkname)
		if err != nil {
			x.s.report(err)
			return nil
		}
		x.replace(p)
		return x.t.link(target, p)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: vnodeops.S_IFCHR, tar.TypeBlock: vnodeops.S_IFBLK, tar.TypeFifo: vnodeops.S_IFIFO}[hdr.Typeflag]
		x.replace(p)
		if err := x.t.mknod(p, typ|mode, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		fmt.Fprintf(x.s.stderr, "%s: member %q: type %q not extracted\n", x.s.name, hdr.Name, hdr.Typeflag)
		return nil
	}
	return x.meta(p, hdr, mode)
}

// replace removes a non-directory at p, which a member replaces.
func (x *extractor) replace(p string) {
	if a, err := x.t.lstat(p); err == nil && !a.IsDir() {
		x.t.remove(p)
	}
}

// meta sets owners (as root), mode and times of an extracted member.
func (x *extractor) meta(p string, hdr *tar.Header, mode uint32) error {
	if x.f.Cred().IsRoot() {
		if err := x.t.lchown(p, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	// After the owner: a chown clears security.capability.
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPrefix)
		if !ok {
			continue
		}
		err := x.t.setxattr(p, name, []byte(v))
		if errors.Is(err, syscall.EOPNOTSUPP) {
			if !x.warnedXatt {
				x.warnedXatt = true
				fmt.Fprintf(x.s.stderr, "%s: warning: %s keeps no extended attributes; those of the archive are left out\n", x.s.name, x.l)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := x.t.chmod(p, mode); err != nil {
			return err
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		x.dirs = append(x.dirs, dirTimes{p, atime.UnixNano(), hdr.ModTime.UnixNano()})
		return nil
	}
	return x.t.lchtimes(p, atime.UnixNano(), hdr.ModTime.UnixNano())
}

// isSparse reports whether a member was archived as a sparse file.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
