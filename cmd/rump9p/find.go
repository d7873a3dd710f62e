package main

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/cobra"
)

// ---- find

// findExpr is find's expression: every predicate must hold.
type findExpr struct {
	preds              []findPred
	minDepth, maxDepth int
}

type findPred struct {
	not bool
	fn  func(name string, a vnodeops.Attr) bool
}

func newFindCmd(st streams) *cobra.Command {
	cmd := imageCommand(st, imageSpec{
		use:   "find [flags] IMAGE[:PATH] [EXPRESSION]",
		short: "find files in an image by name, type and size",
		long: `Walks PATH (the root when missing) without following symbolic links and prints
the path in the image of every file for which the whole expression holds.
The image flags come before IMAGE[:PATH]; the expression, after it, is a list
of predicates that must all hold, each negated by a ! or -not before it:

  -name PATTERN    the last element matches the shell PATTERN (*, ?, [...])
  -iname PATTERN   the same, ignoring case
  -type T          the file is of type T: f, d, l, b, c, p or s (or several,
                   comma-separated: -type f,l)
  -size [+-]N[U]   the size, rounded up to units U, is more than (+), less
                   than (-) or exactly N; U is c (bytes), w (2 bytes), b
                   (512 bytes, the default), k, M or G
  -maxdepth N      descend at most N levels below PATH
  -mindepth N      print nothing less than N levels below PATH`,
		args: minArgs(1),
	}, func(s *session, args []string) error {
		expr, err := parseFind(args[1:])
		if err != nil {
			return usageError{err}
		}
		s.eachImage(args[:1], false, func(f *ukfs.FS, l location) error {
			return find(s, f, l, l.path, 0, expr)
		})
		return nil
	})
	// The expression's -name and -type are find's own, not flags.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func parseFind(args []string) (*findExpr, error) {
	e := &findExpr{maxDepth: -1}
	not := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "!" || a == "-not" {
			not = !not
			continue
		}
		if a == "-print" {
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("find: %s: missing argument, or unknown predicate", a)
		}
		v := args[i+1]
		i++
		var fn func(string, vnodeops.Attr) bool
		switch a {
		case "-name", "-iname":
			fold := a == "-iname"
			if fold {
				v = strings.ToLower(v)
			}
			if _, err := path.Match(v, ""); err != nil {
				return nil, fmt.Errorf("find: %s %q: %v", a, v, err)
			}
			fn = func(name string, _ vnodeops.Attr) bool {
				if fold {
					name = strings.ToLower(name)
				}
				ok, _ := path.Match(v, name)
				return ok
			}
		case "-type":
			want := map[uint32]bool{}
			for _, t := range strings.Split(v, ",") {
				m, ok := findTypes[t]
				if !ok {
					return nil, fmt.Errorf("find: -type %q: want f, d, l, b, c, p or s", t)
				}
				want[m] = true
			}
			fn = func(_ string, a vnodeops.Attr) bool { return want[a.Mode&vnodeops.S_IFMT] }
		case "-size":
			f, err := sizePred(v)
			if err != nil {
				return nil, err
			}
			fn = f
		case "-maxdepth", "-mindepth":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("find: %s %q: want a number >= 0", a, v)
			}
			if a == "-maxdepth" {
				e.maxDepth = n
			} else {
				e.minDepth = n
			}
			continue
		default:
			return nil, fmt.Errorf("find: unknown predicate %q", a)
		}
		e.preds = append(e.preds, findPred{not: not, fn: fn})
		not = false
	}
	if not {
		return nil, fmt.Errorf("find: ! or -not at the end of the expression")
	}
	return e, nil
}

var findTypes = map[string]uint32{
	"f": vnodeops.S_IFREG, "d": vnodeops.S_IFDIR, "l": vnodeops.S_IFLNK, "b": vnodeops.S_IFBLK,
	"c": vnodeops.S_IFCHR, "p": vnodeops.S_IFIFO, "s": vnodeops.S_IFSOCK,
}

// sizePred parses find's -size argument.
func sizePred(v string) (func(string, vnodeops.Attr) bool, error) {
	bad := fmt.Errorf("find: -size %q: want [+-]N[cwbkMG]", v)
	cmp := 0
	switch {
	case strings.HasPrefix(v, "+"):
		cmp, v = 1, v[1:]
	case strings.HasPrefix(v, "-"):
		cmp, v = -1, v[1:]
	}
	unit := uint64(512)
	if v != "" {
		if u, ok := map[byte]uint64{'c': 1, 'w': 2, 'b': 512, 'k': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[v[len(v)-1]]; ok {
			unit, v = u, v[:len(v)-1]
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, bad
	}
	return func(_ string, a vnodeops.Attr) bool {
		units := (a.Size + unit - 1) / unit
		switch cmp {
		case 1:
			return units > n
		case -1:
			return units < n
		}
		return units == n
	}, nil
}

func (e *findExpr) match(name string, a vnodeops.Attr) bool {
	for _, p := range e.preds {
		if p.fn(name, a) == p.not {
			return false
		}
	}
	return true
}

func find(s *session, f *ukfs.FS, l location, p string, depth int, e *findExpr) error {
	a, err := f.Attr(p, false)
	if err != nil {
		return err
	}
	if depth >= e.minDepth && e.match(path.Base(p), a) {
		fmt.Fprintln(s.stdout, p)
	}
	if !a.IsDir() || (e.maxDepth >= 0 && depth >= e.maxDepth) {
		return nil
	}
	names, err := f.Names(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := find(s, f, l, path.Join(p, n), depth+1, e); err != nil {
			s.report(imgErr(l, err))
		}
	}
	return nil
}

// ---- du

type duOpts struct {
	summary, all, human bool
}

func newDuCmd(st streams) *cobra.Command {
	var o duOpts
	cmd := imageCommand(st, imageSpec{
		use:   "du [-sah] IMAGE[:PATH]...",
		short: "show the space files of an image take",
		long: `Prints the space each directory below PATH takes (in KiB, or with -h in K, M,
G), its contents included, counting a file with several links once.`,
		args: minArgs(1),
	}, func(s *session, args []string) error {
		s.eachImage(args, false, func(f *ukfs.FS, l location) error {
			_, err := du(s, &o, f, l, l.path, map[uint64]bool{}, true)
			return err
		})
		return nil
	})
	fl := cmd.Flags()
	fl.BoolVarP(&o.summary, "summarize", "s", false, "only the total of each argument")
	fl.BoolVarP(&o.all, "all", "a", false, "files too, not only directories")
	fl.BoolVarP(&o.human, "human-readable", "h", false, "sizes in K, M, G")
	helpWithoutH(cmd)
	return cmd
}

// du returns the bytes p and what is below it take, printing lines as
// the options say.
func du(s *session, o *duOpts, f *ukfs.FS, l location, p string, seen map[uint64]bool, top bool) (uint64, error) {
	a, err := f.Attr(p, false)
	if err != nil {
		return 0, err
	}
	var n uint64
	if a.Nlink < 2 || a.IsDir() || !seen[a.Ino] {
		n = a.Blocks * 512
		seen[a.Ino] = true
	}
	if a.IsDir() {
		names, err := f.Names(p)
		if err != nil {
			s.report(imgErr(l, err))
		}
		for _, name := range names {
			m, err := du(s, o, f, l, path.Join(p, name), seen, false)
			if err != nil {
				s.report(imgErr(l, err))
			}
			n += m
		}
	}
	if top || (!o.summary && (a.IsDir() || o.all)) {
		size := strconv.FormatUint((n+1023)/1024, 10)
		if o.human {
			size = humanSize(n)
		}
		fmt.Fprintf(s.stdout, "%s\t%s\n", size, p)
	}
	return n, nil
}
