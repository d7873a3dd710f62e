package rumpcore

import (
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// xattrAccess checks that cred may read attribute name of v: trusted.*
// only for root, user.* with read access, as Linux does.
func (v *Vnode) xattrAccess(cred vnodeops.Cred, name string) error {
	if strings.HasPrefix(name, "trusted.") && !cred.IsRoot() {
		return syscall.ENODATA // hidden, as Linux hides them from others
	}
	if strings.HasPrefix(name, "user.") {
		return v.Access(cred, vnodeops.AccessRead)
	}
	return nil
}

// Getxattr returns the value of v's extended attribute name. ENODATA if
// there is none, EOPNOTSUPP where the driver keeps no attributes, EACCES
// for a user.* attribute of a file cred may not read, ERANGE past the
// 64 KiB a value may have (Linux's XATTR_SIZE_MAX).
func (v *Vnode) Getxattr(cred vnodeops.Cred, name string) ([]byte, error) {
	x, ok := v.vn.(vnodeops.Xattrs)
	if !ok {
		return nil, syscall.EOPNOTSUPP
	}
	if name == "" || len(name) > 255 {
		return nil, syscall.ERANGE
	}
	if err := v.xattrAccess(cred, name); err != nil {
		return nil, err
	}
	exit, err := v.m.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	val, err := x.Getxattr(name)
	if err == nil && len(val) > 64<<10 {
		return nil, syscall.ERANGE
	}
	return val, errno(err)
}

// Listxattr returns the names of v's extended attributes that cred may
// see (trusted.* only for root). EOPNOTSUPP where the driver keeps none.
func (v *Vnode) Listxattr(cred vnodeops.Cred) ([]string, error) {
	x, ok := v.vn.(vnodeops.Xattrs)
	if !ok {
		return nil, syscall.EOPNOTSUPP
	}
	exit, err := v.m.enter()
	if err != nil {
		return nil, err
	}
	names, err := x.Listxattr()
	exit()
	if err != nil {
		return nil, errno(err)
	}
	out := names[:0:0]
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.") && !cred.IsRoot() {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// Setxattr sets v's extended attribute name to value, with flags
// vnodeops.XattrCreate (EEXIST if it exists) or vnodeops.XattrReplace
// (ENODATA if it does not), or 0. The rules are xattrWritePolicy's
// (xattrpolicy.go): user.* needs write access (EACCES) and a regular file
// or directory (EPERM), and on a sticky directory its owner; trusted.*
// and security.* need root (EPERM); system.posix_acl_* the owner or root
// (EPERM) and a valid ACL in Linux's xattr form (EINVAL). Errors before
// any of these: EINVAL for unknown flags or an empty name after a known
// prefix, ERANGE for a name that is empty or longer than 255 bytes, E2BIG
// for a value over 64 KiB, EOPNOTSUPP for a namespace the kernel does not
// handle or a driver that stores no attributes, EROFS on a read-only
// mount. The driver adds EPERM for an immutable or append-only file and
// ENOSPC, E2BIG, ERANGE where its format cannot hold the attribute (see
// vnodeops.XattrWriter). On success the file's ctime is the kernel clock's
// now.
func (v *Vnode) Setxattr(cred vnodeops.Cred, name string, value []byte, flags int) error {
	if !xattrFlagsValid(flags) {
		return syscall.EINVAL
	}
	if value == nil {
		value = []byte{}
	}
	if len(value) > vnodeops.XattrSizeMax {
		return syscall.E2BIG
	}
	return v.xattrWrite(cred, name, value, func(x vnodeops.XattrWriter) error {
		return x.Setxattr(name, value, flags)
	})
}

// Removexattr removes v's extended attribute name: ENODATA if there is
// none. The permission rules and errors are Setxattr's.
func (v *Vnode) Removexattr(cred vnodeops.Cred, name string) error {
	return v.xattrWrite(cred, name, nil, func(x vnodeops.XattrWriter) error {
		return x.Removexattr(name)
	})
}

// xattrWrite applies the checks common to Setxattr and Removexattr
// (value nil) and runs op on the driver's XattrWriter inside the mount.
func (v *Vnode) xattrWrite(cred vnodeops.Cred, name string, value []byte, op func(vnodeops.XattrWriter) error) error {
	ns, err := xattrNamespace(name)
	if err != nil {
		return err
	}
	if v.m.ro {
		return syscall.EROFS
	}
	x, ok := v.vn.(vnodeops.XattrWriter)
	if !ok {
		return syscall.EOPNOTSUPP
	}
	a, err := v.Getattr()
	if err != nil {
		return err
	}
	access := func() error { return v.Access(cred, vnodeops.AccessWrite) }
	if err := xattrWritePolicy(cred, a, ns, name, value, access); err != nil {
		return err
	}
	exit, err := v.m.enter()
	if err != nil {
		return err
	}
	defer exit()
	return errno(op(x))
}

// onPath runs fn on a reference to the file path names, following a
// symbolic link in the last component, as the *xattr(2) calls do.
func (p *Proc) onPath(path string, fn func(v *Vnode) error) error {
	v, err := p.namei(path, true)
	if err != nil {
		return err
	}
	defer v.Release()
	return fn(v)
}

// Getxattr returns the value of the extended attribute name of path, as
// getxattr(2); see Vnode.Getxattr.
func (p *Proc) Getxattr(path, name string) (val []byte, err error) {
	err = p.onPath(path, func(v *Vnode) error {
		val, err = v.Getxattr(p.cred, name)
		return err
	})
	return val, err
}

// Listxattr returns the names of the extended attributes of path that p
// may see, as listxattr(2); a file system without attributes gives none.
func (p *Proc) Listxattr(path string) (names []string, err error) {
	err = p.onPath(path, func(v *Vnode) error {
		names, err = v.Listxattr(p.cred)
		if err == syscall.EOPNOTSUPP {
			return nil
		}
		return err
	})
	return names, err
}

// Setxattr sets the extended attribute name of path, as setxattr(2); see
// Vnode.Setxattr for the rules and errors.
func (p *Proc) Setxattr(path, name string, value []byte, flags int) error {
	return p.onPath(path, func(v *Vnode) error { return v.Setxattr(p.cred, name, value, flags) })
}

// Removexattr removes the extended attribute name of path, as
// removexattr(2).
func (p *Proc) Removexattr(path, name string) error {
	return p.onPath(path, func(v *Vnode) error { return v.Removexattr(p.cred, name) })
}
