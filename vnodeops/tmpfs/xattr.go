package tmpfs

import (
	"slices"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// XattrSpace is the most bytes of extended attributes one inode keeps:
// the lengths of every name and value added up. Setxattr past it gives
// ENOSPC; a single value of vnodeops.XattrSizeMax always fits. The bytes
// are charged to the size limit in whole pages per inode.
const XattrSpace = 4 * vnodeops.XattrSizeMax

var (
	_ vnodeops.Xattrs      = (*node)(nil)
	_ vnodeops.XattrWriter = (*node)(nil)
)

// Getxattr implements vnodeops.Xattrs.
func (n *node) Getxattr(name string) ([]byte, error) {
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	v, ok := n.xattrs[name]
	if !ok {
		return nil, syscall.ENODATA
	}
	return slices.Clone(v), nil
}

// Listxattr implements vnodeops.Xattrs; names come sorted.
func (n *node) Listxattr() ([]string, error) {
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	names := make([]string, 0, len(n.xattrs))
	for k := range n.xattrs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names, nil
}

// Setxattr implements vnodeops.XattrWriter. Values are kept as given
// (POSIX ACLs too, in their xattr form); file flags are stored, not
// enforced, as for every other operation. ENOSPC past XattrSpace or the
// size limit.
func (n *node) Setxattr(name string, value []byte, flags int) error {
	return n.changeXattr(name, append([]byte{}, value...), flags)
}

// Removexattr implements vnodeops.XattrWriter.
func (n *node) Removexattr(name string) error {
	return n.changeXattr(name, nil, vnodeops.XattrReplace)
}

// changeXattr sets attribute name to value, or removes it when value is
// nil, under the XattrCreate/XattrReplace rules of flags.
func (n *node) changeXattr(name string, value []byte, flags int) error {
	fs := n.fs
	if fs.ro {
		return syscall.EROFS
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	old, exists := n.xattrs[name]
	switch {
	case exists && flags&vnodeops.XattrCreate != 0:
		return syscall.EEXIST
	case !exists && flags&vnodeops.XattrReplace != 0:
		return syscall.ENODATA
	}
	bytes := n.xattrBytes
	if exists {
		bytes -= int64(len(name) + len(old))
	}
	if value != nil {
		bytes += int64(len(name) + len(value))
	}
	if bytes > XattrSpace {
		return syscall.ENOSPC
	}
	if err := n.chargeXattrsLocked(bytes); err != nil {
		return err
	}
	if value == nil {
		delete(n.xattrs, name)
	} else {
		if n.xattrs == nil {
			n.xattrs = make(map[string][]byte)
		}
		n.xattrs[name] = value
	}
	n.ctime = fs.nowNs()
	return nil
}

// chargeXattrsLocked makes bytes the inode's attribute bytes, charging
// or releasing whole pages against the size limit (ENOSPC when they do
// not fit).
func (n *node) chargeXattrsLocked(bytes int64) error {
	pages := (bytes + PageSize - 1) / PageSize
	if d := pages - n.xattrPages; d > 0 && !n.fs.allocPagesLocked(d) {
		return syscall.ENOSPC
	} else if d < 0 {
		n.fs.usedPages += d
	}
	n.xattrPages = pages
	n.xattrBytes = bytes
	return nil
}
