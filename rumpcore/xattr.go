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
