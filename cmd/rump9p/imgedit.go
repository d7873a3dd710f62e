package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/cobra"
)

// ---- mkdir, rmdir

func newMkdirCmd(st streams) *cobra.Command {
	var parents bool
	var mode string
	cmd := imageCommand(st, imageSpec{
		use:   "mkdir [-p] [-m MODE] IMAGE:PATH...",
		short: "make directories in an image",
		args:  minArgs(1),
	}, func(s *session, args []string) error {
		perm := uint32(0o755)
		if mode != "" {
			m, err := parseMode(mode, 0o777, true)
			if err != nil {
				return usageError{err}
			}
			perm = m
		}
		s.eachImage(args, true, func(f *ukfs.FS, l location) error {
			if parents {
				return f.MkdirAll(l.path, ukfs.FileMode(perm))
			}
			return f.Mkdir(l.path, ukfs.FileMode(perm))
		})
		return nil
	})
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "make missing parents too; no error if PATH exists")
	cmd.Flags().StringVarP(&mode, "mode", "m", "", "`MODE` of the new directories (default 755)")
	return cmd
}

func newRmdirCmd(st streams) *cobra.Command {
	return imageCommand(st, imageSpec{
		use:   "rmdir IMAGE:PATH...",
		short: "remove empty directories of an image",
		args:  minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, true, func(f *ukfs.FS, l location) error { return f.Rmdir(l.path) })
		return nil
	})
}

// ---- rm

func newRmCmd(st streams) *cobra.Command {
	var recursive, force bool
	cmd := imageCommand(st, imageSpec{
		use:   "rm [-rf] IMAGE:PATH...",
		short: "remove files of an image",
		long: `Removes files (not following symbolic links); with -r, directories and
everything below them. The root of an image is never removed. -f ignores
files that do not exist.`,
		args: minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, true, func(f *ukfs.FS, l location) error {
			if l.path == "/" {
				return fmt.Errorf("%s: refusing to remove the root of an image", l)
			}
			a, err := f.Attr(l.path, false)
			if err != nil {
				if force && errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if a.IsDir() {
				if !recursive {
					return fmt.Errorf("%s: is a directory (use -r)", l)
				}
				return f.RemoveAll(l.path)
			}
			return f.Remove(l.path)
		})
		return nil
	})
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "remove directories and their contents")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "ignore files that do not exist")
	return cmd
}

// ---- mv

func newMvCmd(st streams) *cobra.Command {
	return imageCommand(st, imageSpec{
		use:   "mv IMAGE:SRC... IMAGE:DST",
		short: "rename files within an image",
		long: `Renames SRC to DST within one image, replacing DST as rename(2) does; when DST
is a directory, each SRC moves into it. Moving between images or to the host
is cp -a followed by rm -r.`,
		args: minArgs(2),
	}, func(s *session, args []string) error {
		dst := s.locate(args[len(args)-1], true)
		f, err := s.fs(dst, true)
		if err != nil {
			s.report(err)
			return nil
		}
		a, derr := f.Attr(dst.path, true)
		dstIsDir := derr == nil && a.IsDir()
		if len(args) > 2 && !dstIsDir {
			s.report(fmt.Errorf("%s: not a directory (moving several files)", dst))
			return nil
		}
		for _, arg := range args[:len(args)-1] {
			src := s.locate(arg, true)
			if src.key() != dst.key() {
				s.report(fmt.Errorf("%s and %s are not in one image: use cp -a, then rm -r", arg, dst))
				continue
			}
			to := dst.path
			if dstIsDir {
				to = path.Join(to, path.Base(src.path))
			}
			if err := f.Rename(src.path, to); err != nil {
				s.report(imgErr(dst, err))
			}
		}
		return nil
	})
}

// ---- ln

func newLnCmd(st streams) *cobra.Command {
	var symbolic, force bool
	cmd := imageCommand(st, imageSpec{
		use:   "ln [-sf] TARGET IMAGE:LINK",
		short: "make hard or symbolic links in an image",
		long: `Makes LINK a hard link to the file IMAGE:TARGET of the same image, or with -s a
symbolic link whose target is the text TARGET (stored as written). When LINK
is a directory the link goes into it, named after TARGET.`,
		args: exactArgs(2),
	}, func(s *session, args []string) error {
		link := s.locate(args[1], true)
		f, err := s.fs(link, true)
		if err != nil {
			s.report(err)
			return nil
		}
		target := args[0]
		if !symbolic {
			t := s.locate(args[0], true)
			if t.key() != link.key() {
				s.report(fmt.Errorf("%s and %s are not in one image: hard links stay in one file system", args[0], link))
				return nil
			}
			target = t.path
		}
		to := link.path
		if a, err := f.Attr(to, true); err == nil && a.IsDir() {
			to = path.Join(to, path.Base(target))
		}
		if force {
			if err := f.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.report(imgErr(link, err))
				return nil
			}
		}
		if symbolic {
			err = f.Symlink(target, to)
		} else {
			err = f.Link(target, to)
		}
		if err != nil {
			s.report(imgErr(link, err))
		}
		return nil
	})
	cmd.Flags().BoolVarP(&symbolic, "symbolic", "s", false, "make a symbolic link")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace an existing LINK")
	return cmd
}

// ---- chmod, chown

func newChmodCmd(st streams) *cobra.Command {
	var recursive bool
	cmd := imageCommand(st, imageSpec{
		use:   "chmod [-R] MODE IMAGE:PATH...",
		short: "change the modes of files of an image",
		long: `Sets the mode of each PATH: MODE is octal (755, 4755) or symbolic, as chmod(1)
takes it: [ugoa]*[+-=][rwxXst]*, several comma-separated (u+x,go-w). Symbolic
links are followed, except below PATH with -R, where they are left alone.`,
		args: minArgs(2),
	}, func(s *session, args []string) error {
		if _, err := parseMode(args[0], 0, false); err != nil {
			return usageError{err}
		}
		s.eachImage(args[1:], true, func(f *ukfs.FS, l location) error {
			return walkApply(s, f, l, l.path, recursive, true, func(p string, a vnodeops.Attr) error {
				m, _ := parseMode(args[0], a.Mode, a.IsDir())
				return f.Chmod(p, ukfs.FileMode(m))
			})
		})
		return nil
	})
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "change everything below PATH too")
	return cmd
}

func newChownCmd(st streams) *cobra.Command {
	var recursive, noDeref bool
	cmd := imageCommand(st, imageSpec{
		use:   "chown [-Rh] UID[:GID] IMAGE:PATH...",
		short: "change the owners of files of an image",
		long: `Sets the owner (and with :GID the group; :GID alone sets only the group) of
each PATH. Owners are numbers: an image carries no user database. -h changes a
symbolic link itself; below PATH, -R never follows links.`,
		args: minArgs(2),
	}, func(s *session, args []string) error {
		uid, gid, err := parseOwner(args[0])
		if err != nil {
			return usageError{err}
		}
		s.eachImage(args[1:], true, func(f *ukfs.FS, l location) error {
			return walkApply(s, f, l, l.path, recursive, !noDeref, func(p string, a vnodeops.Attr) error {
				if p == l.path && !noDeref {
					return f.Chown(p, uid, gid)
				}
				return f.Lchown(p, uid, gid)
			})
		})
		return nil
	})
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "change everything below PATH too")
	cmd.Flags().BoolVarP(&noDeref, "no-dereference", "h", false, "change a symbolic link itself")
	helpWithoutH(cmd)
	return cmd
}

// parseOwner parses UID, UID:GID or :GID; -1 stands for unchanged.
func parseOwner(s string) (uid, gid int, err error) {
	u, g, hasG := strings.Cut(s, ":")
	num := func(v string) (int, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 1<<32-1 {
			return 0, fmt.Errorf("owner %q: want numeric UID[:GID] (an image has no user names)", s)
		}
		return int(n), nil
	}
	uid, gid = -1, -1
	if u != "" {
		if uid, err = num(u); err != nil {
			return
		}
	}
	if hasG && g != "" {
		if gid, err = num(g); err != nil {
			return
		}
	}
	if uid == -1 && gid == -1 {
		return 0, 0, fmt.Errorf("owner %q: want UID[:GID]", s)
	}
	return uid, gid, nil
}

// walkApply calls fn on p and, with recursive, on everything below it;
// follow says whether p itself is stat'ed through a symbolic link. Errors
// below p are reported and the walk goes on.
func walkApply(s *session, f *ukfs.FS, l location, p string, recursive, follow bool, fn func(string, vnodeops.Attr) error) error {
	a, err := f.Attr(p, follow)
	if err != nil {
		return err
	}
	if err := fn(p, a); err != nil {
		return err
	}
	if !recursive || !a.IsDir() {
		return nil
	}
	names, err := f.Names(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := walkApply(s, f, l, path.Join(p, n), true, false, fn); err != nil {
			s.report(imgErr(l, err))
		}
	}
	return nil
}

// parseMode applies MODE (octal, or chmod(1)'s symbolic form) to the mode
// old (of a directory when dir) and returns the new permission bits.
func parseMode(mode string, old uint32, dir bool) (uint32, error) {
	if n, err := strconv.ParseUint(mode, 8, 32); err == nil {
		if n > vnodeops.PermMask {
			return 0, fmt.Errorf("mode %q: more than 7777", mode)
		}
		return uint32(n), nil
	}
	m := old & vnodeops.PermMask
	bad := fmt.Errorf("mode %q: want octal, or [ugoa]*[+-=][rwxXst]* clauses joined by commas", mode)
	for _, clause := range strings.Split(mode, ",") {
		i := 0
		var who uint32
		for ; i < len(clause) && strings.IndexByte("ugoa", clause[i]) >= 0; i++ {
			who |= map[byte]uint32{'u': 0o4700, 'g': 0o2070, 'o': 0o1007, 'a': 0o7777}[clause[i]]
		}
		if who == 0 {
			who = 0o7777
		}
		if i == len(clause) {
			return 0, bad
		}
		for i < len(clause) {
			op := clause[i]
			if op != '+' && op != '-' && op != '=' {
				return 0, bad
			}
			i++
			var bits uint32
			for ; i < len(clause) && strings.IndexByte("rwxXst", clause[i]) >= 0; i++ {
				switch clause[i] {
				case 'r':
					bits |= 0o444
				case 'w':
					bits |= 0o222
				case 'x':
					bits |= 0o111
				case 'X':
					if dir || old&0o111 != 0 {
						bits |= 0o111
					}
				case 's':
					bits |= vnodeops.S_ISUID | vnodeops.S_ISGID
				case 't':
					bits |= vnodeops.S_ISVTX
				}
			}
			bits &= who
			switch op {
			case '+':
				m |= bits
			case '-':
				m &^= bits
			case '=':
				m = m&^who | bits
			}
		}
	}
	return m, nil
}

// ---- touch

func newTouchCmd(st streams) *cobra.Command {
	var noCreate bool
	var date string
	cmd := imageCommand(st, imageSpec{
		use:   "touch [--no-create] [-d TIME] IMAGE:PATH...",
		short: "set the times of files of an image, making missing ones",
		long: `Sets the access and modification times of each PATH to now (or to TIME with
-d: RFC 3339, "2006-01-02 15:04:05", "2006-01-02" in UTC, or @SECONDS), making
an empty file (mode 644) where none exists, unless --no-create.`,
		args: minArgs(1),
	}, func(s *session, args []string) error {
		var when time.Time
		if date != "" {
			t, err := parseDate(date)
			if err != nil {
				return usageError{err}
			}
			when = t
		}
		s.eachImage(args, true, func(f *ukfs.FS, l location) error {
			if _, err := f.Attr(l.path, true); errors.Is(err, fs.ErrNotExist) {
				if noCreate {
					return nil
				}
				file, err := f.OpenFile(l.path, os.O_WRONLY|os.O_CREATE, 0o644)
				if err != nil {
					return err
				}
				if err := file.Close(); err != nil {
					return err
				}
			}
			if when.IsZero() {
				return f.Touch(l.path)
			}
			return f.Chtimes(l.path, when, when)
		})
		return nil
	})
	// Not -c, as touch(1) has it: -c is the configuration file here.
	cmd.Flags().BoolVar(&noCreate, "no-create", false, "do not make missing files")
	cmd.Flags().StringVarP(&date, "date", "d", "", "use `TIME` instead of now")
	return cmd
}

func parseDate(s string) (time.Time, error) {
	if strings.HasPrefix(s, "@") {
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err == nil {
			return time.Unix(n, 0), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("-d %q: want RFC 3339, 2006-01-02 15:04:05, 2006-01-02 or @SECONDS", s)
}
