package rumpcore

import (
	"encoding/binary"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// The extended attribute policy: pure functions of a credential, a file's
// attributes and an attribute name, as Linux's VFS (fs/xattr.c
// xattr_permission), its capability module (security.*) and its POSIX ACL
// code apply them. The table tests in xattrpolicy_test.go are the
// specification.

// xattrNS is the namespace of an attribute name.
type xattrNS int

const (
	nsUser     xattrNS = iota + 1 // user.*
	nsTrusted                     // trusted.*
	nsSecurity                    // security.*
	nsACL                         // system.posix_acl_access, system.posix_acl_default
)

// Names of the POSIX ACL attributes.
const (
	aclAccess  = "system.posix_acl_access"
	aclDefault = "system.posix_acl_default"
)

// xattrNamespace classifies a full attribute name for writing: ERANGE for
// an empty name or one longer than vnodeops.XattrNameMax, EOPNOTSUPP for
// a namespace the kernel has no handler for (any other system.* name, or
// no known prefix), EINVAL for a known prefix with nothing after it.
func xattrNamespace(name string) (xattrNS, error) {
	if name == "" || len(name) > vnodeops.XattrNameMax {
		return 0, syscall.ERANGE
	}
	var ns xattrNS
	var suffix string
	switch {
	case strings.HasPrefix(name, "user."):
		ns, suffix = nsUser, name[len("user."):]
	case strings.HasPrefix(name, "trusted."):
		ns, suffix = nsTrusted, name[len("trusted."):]
	case strings.HasPrefix(name, "security."):
		ns, suffix = nsSecurity, name[len("security."):]
	case name == aclAccess || name == aclDefault:
		return nsACL, nil
	default:
		return 0, syscall.EOPNOTSUPP
	}
	if suffix == "" {
		return 0, syscall.EINVAL
	}
	return ns, nil
}

// xattrWritePolicy decides whether cred may set (value non-nil) or remove
// (value nil) attribute name of a file with attributes a, once the name
// has been classified as ns:
//   - user.*: only on regular files and directories (EPERM otherwise);
//     on a sticky directory only for its owner or root (EPERM); then
//     write access (writeAccess: EACCES, EROFS, EPERM);
//   - trusted.*: root only (EPERM);
//   - security.*: root only (EPERM), as Linux's capability module asks
//     CAP_SYS_ADMIN (CAP_SETFCAP for security.capability);
//   - system.posix_acl_*: not on symbolic links (EOPNOTSUPP); the owner
//     or root (EPERM); a default ACL only on a directory (EACCES); the
//     value must be a POSIX ACL in Linux's xattr form (checkACLXattr).
func xattrWritePolicy(cred vnodeops.Cred, a vnodeops.Attr, ns xattrNS, name string, value []byte, writeAccess func() error) error {
	owner := cred.IsRoot() || cred.UID == a.UID
	typ := a.Mode & vnodeops.S_IFMT
	switch ns {
	case nsUser:
		if typ != vnodeops.S_IFREG && typ != vnodeops.S_IFDIR {
			return syscall.EPERM
		}
		if typ == vnodeops.S_IFDIR && a.Mode&vnodeops.S_ISVTX != 0 && !owner {
			return syscall.EPERM
		}
		return writeAccess()
	case nsTrusted, nsSecurity:
		if !cred.IsRoot() {
			return syscall.EPERM
		}
		return nil
	case nsACL:
		if typ == vnodeops.S_IFLNK {
			return syscall.EOPNOTSUPP
		}
		if !owner {
			return syscall.EPERM
		}
		if value == nil {
			return nil
		}
		if name == aclDefault && typ != vnodeops.S_IFDIR {
			return syscall.EACCES
		}
		return checkACLXattr(value)
	}
	return syscall.EOPNOTSUPP
}

// POSIX ACLs in Linux's xattr form (include/uapi/linux/posix_acl_xattr.h):
// a little-endian header a_version[4] = 2, then entries e_tag[2] e_perm[2]
// e_id[4].
const (
	aclXattrVersion = 2
	aclXattrHeader  = 4
	aclXattrEntry   = 8
)

// ACL entry tags (ACL_USER_OBJ ... ACL_OTHER).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// checkACLXattr checks that v is a POSIX ACL in xattr form, as Linux's
// posix_acl_from_xattr and posix_acl_valid do: EOPNOTSUPP for another
// version, EINVAL for a size that is not a whole number of entries, an
// unknown tag or permission bits beyond rwx, or entries that do not make
// a valid ACL (one each of user, group and other owner entries, a mask
// when named entries are present, at most one mask). A header alone (no
// entries) is accepted: Linux takes it as "no ACL".
func checkACLXattr(v []byte) error {
	if len(v) < aclXattrHeader {
		return syscall.EINVAL
	}
	if binary.LittleEndian.Uint32(v) != aclXattrVersion {
		return syscall.EOPNOTSUPP
	}
	ents := v[aclXattrHeader:]
	if len(ents)%aclXattrEntry != 0 {
		return syscall.EINVAL
	}
	if len(ents) == 0 {
		return nil
	}
	seen := map[uint16]int{}
	named := false
	for off := 0; off < len(ents); off += aclXattrEntry {
		tag := binary.LittleEndian.Uint16(ents[off:])
		perm := binary.LittleEndian.Uint16(ents[off+2:])
		if perm&^7 != 0 {
			return syscall.EINVAL
		}
		switch tag {
		case aclUser, aclGroup:
			named = true
		case aclUserObj, aclGroupObj, aclMask, aclOther:
		default:
			return syscall.EINVAL
		}
		seen[tag]++
	}
	if seen[aclUserObj] != 1 || seen[aclGroupObj] != 1 || seen[aclOther] != 1 || seen[aclMask] > 1 {
		return syscall.EINVAL
	}
	if named && seen[aclMask] == 0 {
		return syscall.EINVAL
	}
	return nil
}

// xattrFlagsValid reports whether flags holds only XattrCreate and
// XattrReplace.
func xattrFlagsValid(flags int) bool {
	return flags&^(vnodeops.XattrCreate|vnodeops.XattrReplace) == 0
}
