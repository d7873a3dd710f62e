package rumpcore

import (
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// maxPath is the longest path a system call accepts, as Linux's PATH_MAX.
const maxPath = 4096

// namei resolves path for p one component at a time and returns a
// reference to the file it names. follow tells whether a symbolic link in
// the last component is followed; links in the middle always are (ELOOP
// after maxSymlinks). A trailing slash demands a directory.
func (p *Proc) namei(path string, follow bool) (*Vnode, error) {
	dir, last, err := p.nameiParent(path)
	if err != nil {
		return nil, err
	}
	links := 0
	return p.walkLast(dir, last, follow || strings.HasSuffix(path, "/"), strings.HasSuffix(path, "/"), &links)
}

// walkLast resolves the final component last in dir (consuming dir's
// reference), following a symbolic link there if follow is set.
func (p *Proc) walkLast(dir *Vnode, last string, follow, mustDir bool, links *int) (*Vnode, error) {
	for {
		if last == "" { // path was "/" or ended in "/"s only
			return dir, nil
		}
		c, err := dir.Lookup(p.cred, last)
		if err != nil {
			dir.Release()
			return nil, err
		}
		a, err := c.Getattr()
		if err != nil {
			dir.Release()
			c.Release()
			return nil, err
		}
		if a.Mode&vnodeops.S_IFMT == vnodeops.S_IFLNK && follow {
			target, err := c.Readlink()
			c.Release()
			if err != nil {
				dir.Release()
				return nil, err
			}
			*links++
			if *links > maxSymlinks {
				dir.Release()
				return nil, syscall.ELOOP
			}
			ndir, nlast, err := p.walkDirs(dir, target, links)
			if err != nil {
				return nil, err
			}
			dir, last = ndir, nlast
			if strings.HasSuffix(target, "/") {
				mustDir = true
			}
			continue
		}
		dir.Release()
		if mustDir && !a.IsDir() {
			c.Release()
			return nil, syscall.ENOTDIR
		}
		return c, nil
	}
}

// nameiParent resolves every component of path but the last, and returns
// a reference to the directory holding it and the last component ("" when
// path is "/" or ends in "/" — callers then work on the directory itself).
func (p *Proc) nameiParent(path string) (*Vnode, string, error) {
	if path == "" {
		return nil, "", syscall.ENOENT
	}
	if len(path) >= maxPath {
		return nil, "", syscall.ENAMETOOLONG
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, "", syscall.EINVAL
	}
	var start *Vnode
	if path[0] == '/' {
		start = p.k.Root()
	} else {
		start = p.cwd.Ref()
	}
	links := 0
	return p.walkDirs(start, path, &links)
}

// walkDirs resolves all but the last component of path starting at start
// (whose reference it consumes; an absolute path restarts at the root).
func (p *Proc) walkDirs(start *Vnode, path string, links *int) (*Vnode, string, error) {
	dir := start
	if strings.HasPrefix(path, "/") {
		dir.Release()
		dir = p.k.Root()
	}
	comps := strings.Split(path, "/")
	// Drop empty components ("a//b", leading and trailing slashes).
	parts := comps[:0]
	for _, c := range comps {
		if c != "" {
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 {
		return dir, "", nil
	}
	for _, c := range parts {
		if len(c) > 255 {
			dir.Release()
			return nil, "", syscall.ENAMETOOLONG
		}
	}
	for _, c := range parts[:len(parts)-1] {
		next, err := p.walkLast(dir, c, true, true, links)
		if err != nil {
			return nil, "", err
		}
		dir = next
	}
	a, err := dir.Getattr()
	if err != nil {
		dir.Release()
		return nil, "", err
	}
	if !a.IsDir() {
		dir.Release()
		return nil, "", syscall.ENOTDIR
	}
	return dir, parts[len(parts)-1], nil
}

// mkdirAll makes every missing directory of path (mode 0755).
func (p *Proc) mkdirAll(path string) error {
	dir := p.k.Root()
	for _, c := range strings.Split(path, "/") {
		if c == "" {
			continue
		}
		next, err := dir.Lookup(p.cred, c)
		if err == syscall.ENOENT {
			next, err = dir.Mkdir(p.cred, c, 0o755)
			if err == syscall.EEXIST {
				next, err = dir.Lookup(p.cred, c)
			}
		}
		dir.Release()
		if err != nil {
			return err
		}
		dir = next
	}
	dir.Release()
	return nil
}
