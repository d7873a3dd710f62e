package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/cobra"
)

// cpOpts are the flags of cp.
type cpOpts struct {
	recursive, preserve, archive bool
}

func newCpCmd(st streams) *cobra.Command {
	var o cpOpts
	cmd := imageCommand(st, imageSpec{
		use:   "cp [-rpa] SRC... DST",
		short: "copy files into, out of and between images",
		long: `Copies files from the host into an image, out of an image to the host, or
from image to image (the same one or another). Each SRC and DST is a host path
or IMAGE[@PARTITION]:PATH; with several SRC, DST is a directory.

-r copies directories recursively, and symbolic links, devices and FIFOs as
what they are. -p keeps modes, owners and times (owners only as root). -a is
-rp plus hard links kept as hard links, holes kept in sparse files, and
extended attributes (where the destination keeps them).
Without -p a new file gets the source's mode less 022 and belongs to the
credential (--uid/--gid in an image, the caller on the host).`,
		args:     minArgs(2),
		progress: true,
	}, func(s *session, args []string) error { return cp(s, o, args) })
	fl := cmd.Flags()
	fl.BoolVarP(&o.recursive, "recursive", "r", false, "copy directories recursively")
	fl.BoolVarP(&o.preserve, "preserve", "p", false, "keep modes, owners and times")
	fl.BoolVarP(&o.archive, "archive", "a", false, "-rp, and keep hard links and sparse holes")
	return cmd
}

func cp(s *session, o cpOpts, args []string) error {
	if o.archive {
		o.recursive, o.preserve = true, true
	}
	dstLoc := s.locate(args[len(args)-1], false)
	var dst tree = hostTree{}
	if !dstLoc.host() {
		f, err := s.fs(dstLoc, true)
		if err != nil {
			s.report(err)
			return nil
		}
		dst = &imageTree{fs: f, loc: dstLoc}
	}
	srcs := args[:len(args)-1]
	da, derr := dst.stat(dstLoc.path)
	dstIsDir := derr == nil && da.IsDir()
	if len(srcs) > 1 && !dstIsDir {
		if derr != nil {
			s.report(derr)
		} else {
			s.report(fmt.Errorf("%s: not a directory (copying several files)", dst.show(dstLoc.path)))
		}
		return nil
	}
	type job struct {
		src     tree
		sp, dp  string
		display string
	}
	var jobs []job
	for _, arg := range srcs {
		l := s.locate(arg, false)
		var src tree = hostTree{}
		if !l.host() {
			f, err := s.fs(l, false)
			if err != nil {
				s.report(err)
				continue
			}
			src = &imageTree{fs: f, loc: l}
		}
		dp := dstLoc.path
		if dstIsDir {
			dp = dst.join(dp, baseName(l))
		}
		jobs = append(jobs, job{src, l.path, dp, arg})
	}
	var total int64 = -1
	if s.progressWanted() {
		total = 0
		for _, j := range jobs {
			total += treeBytes(j.src, j.sp, o.recursive)
		}
	}
	prog := s.newProgress("cp", total)
	defer prog.finish()
	for _, j := range jobs {
		c := &copier{s: s, o: o, src: j.src, dst: dst, links: map[uint64]string{}, prog: prog}
		if j.src.same(dst) && o.recursive && inside(j.dp, j.sp) {
			s.report(fmt.Errorf("cannot copy %s into itself (%s)", j.display, dst.show(j.dp)))
			continue
		}
		if err := c.copy(j.sp, j.dp, true); err != nil {
			s.report(err)
		}
	}
	return nil
}

// baseName is the last element of a location's path; "" for an image's
// root, whose contents then go into the destination directory itself.
func baseName(l location) string {
	if l.host() {
		return filepath.Base(filepath.Clean(l.path))
	}
	if l.path == "/" {
		return ""
	}
	return path.Base(l.path)
}

// inside reports whether p is dir or below it (both clean).
func inside(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// treeBytes adds up the sizes of the regular files below p, for the
// progress bar; errors count nothing (the copy reports them).
func treeBytes(t tree, p string, recursive bool) int64 {
	a, err := t.lstat(p)
	if err != nil {
		return 0
	}
	switch {
	case a.Mode&vnodeops.S_IFMT == vnodeops.S_IFREG:
		return int64(a.Size)
	case a.IsDir() && recursive:
		names, _ := t.names(p)
		var n int64
		for _, name := range names {
			n += treeBytes(t, t.join(p, name), true)
		}
		return n
	}
	return 0
}

// copier copies one SRC to its destination.
type copier struct {
	s        *session
	o        cpOpts
	src, dst tree
	links    map[uint64]string // inode of a multiply linked source -> its copy
	prog     *progress
}

// umask applies to what is created without -p, as cp(1) under umask 022.
const umask = 0o022

// copy copies sp to dp. Symbolic links are followed only at the top and
// without -r.
func (c *copier) copy(sp, dp string, top bool) error {
	var a vnodeops.Attr
	var err error
	if top && !c.o.recursive {
		a, err = c.src.stat(sp)
	} else {
		a, err = c.src.lstat(sp)
	}
	if err != nil {
		return err
	}
	switch a.Mode & vnodeops.S_IFMT {
	case vnodeops.S_IFDIR:
		if !c.o.recursive {
			return fmt.Errorf("%s: is a directory (not copied without -r)", c.src.show(sp))
		}
		return c.copyDir(sp, dp, a)
	case vnodeops.S_IFREG:
		if c.o.archive && a.Nlink > 1 {
			if first, ok := c.links[a.Ino]; ok {
				c.dst.remove(dp)
				return c.dst.link(first, dp)
			}
			c.links[a.Ino] = dp
		}
		if err := c.copyFile(sp, dp, a); err != nil {
			return err
		}
	case vnodeops.S_IFLNK:
		target, err := c.src.readlink(sp)
		if err != nil {
			return err
		}
		if err := c.dst.symlink(target, dp); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := c.dst.remove(dp); err != nil {
				return err
			}
			if err := c.dst.symlink(target, dp); err != nil {
				return err
			}
		}
	default: // devices, FIFOs, sockets
		if err := c.dst.mknod(dp, a.Mode&^umaskUnless(c.o.preserve), a.Rdev); err != nil {
			return err
		}
	}
	c.prog.file()
	return c.meta(sp, dp, a, false)
}

func umaskUnless(preserve bool) uint32 {
	if preserve {
		return 0
	}
	return umask
}

// meta gives dp the owners, mode and times of a (with -p); a new file got
// its mode at creation already.
func (c *copier) meta(sp, dp string, a vnodeops.Attr, isDir bool) error {
	if !c.o.preserve {
		if isDir {
			return c.dst.chmod(dp, a.Mode&vnodeops.PermMask&^umask)
		}
		return nil
	}
	isLink := a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK
	if err := c.dst.lchown(dp, int(a.UID), int(a.GID)); err != nil && !errors.Is(err, syscall.EPERM) {
		return err
	}
	if c.o.archive {
		if err := copyXattrs(c.src, c.dst, sp, dp); err != nil {
			return err
		}
	}
	if !isLink {
		if err := c.dst.chmod(dp, a.Mode&vnodeops.PermMask); err != nil {
			return err
		}
	}
	return c.dst.lchtimes(dp, a.Atime, a.Mtime)
}

func (c *copier) copyDir(sp, dp string, a vnodeops.Attr) error {
	// Writable by its owner while it fills; meta sets the mode after.
	err := c.dst.mkdir(dp, a.Mode&0o777|0o700)
	if errors.Is(err, fs.ErrExist) {
		if da, serr := c.dst.stat(dp); serr == nil && da.IsDir() {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	names, err := c.src.names(sp)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := c.copy(c.src.join(sp, name), c.dst.join(dp, name), false); err != nil {
			return err
		}
	}
	return c.meta(sp, dp, a, true)
}

// copyXattrs copies the extended attributes of sp to dp, each but those
// the destination cannot keep (EOPNOTSUPP).
func copyXattrs(src, dst tree, sp, dp string) error {
	names, err := src.listxattr(sp)
	if err != nil {
		return err
	}
	for _, n := range names {
		v, err := src.getxattr(sp, n)
		if err != nil {
			return err
		}
		if err := dst.setxattr(dp, n, v); err != nil && !errors.Is(err, syscall.EOPNOTSUPP) {
			return err
		}
	}
	return nil
}

// copyBuf is the unit of copying and of hole detection.
const copyBuf = 128 << 10

// copyFile copies the data of a regular file; with -a, runs of zeros
// aligned on 4 KiB are left as holes.
func (c *copier) copyFile(sp, dp string, a vnodeops.Attr) error {
	in, err := c.src.open(sp)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.dst.create(dp, a.Mode&vnodeops.PermMask&^umaskUnless(c.o.preserve))
	if err != nil {
		return err
	}
	sparse := c.o.archive && a.Blocks*512 < a.Size
	if err := copyData(out, in, sparse, c.prog); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyData copies in to out at the same offsets; with sparse, all-zero
// 4 KiB blocks are skipped and the size set at the end, which leaves
// holes.
func copyData(out writeFile, in io.Reader, sparse bool, prog *progress) error {
	buf := make([]byte, copyBuf)
	var off int64
	skipped := false
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			chunk := buf[:n]
			for len(chunk) > 0 {
				blk := chunk[:min(len(chunk), 4096)]
				if sparse && allZero(blk) {
					skipped = true
				} else if _, werr := out.WriteAt(blk, off); werr != nil {
					return werr
				}
				off += int64(len(blk))
				chunk = chunk[len(blk):]
			}
			prog.Write(buf[:n])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if skipped {
		return out.Truncate(off)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
