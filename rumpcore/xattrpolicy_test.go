package rumpcore

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// aclValue builds a POSIX ACL in xattr form from (tag, perm) pairs; named
// entries get id 1000.
func aclValue(version uint32, ents ...[2]uint16) []byte {
	b := binary.LittleEndian.AppendUint32(nil, version)
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint16(b, e[0])
		b = binary.LittleEndian.AppendUint16(b, e[1])
		id := uint32(0xFFFFFFFF)
		if e[0] == aclUser || e[0] == aclGroup {
			id = 1000
		}
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// The extended attribute policy, case by case (Linux's xattr_permission,
// capability module and POSIX ACL rules).
func TestXattrNamespace(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   xattrNS
		err  error
	}{
		{"user.a", nsUser, nil},
		{"trusted.overlay.opaque", nsTrusted, nil},
		{"security.selinux", nsSecurity, nil},
		{"system.posix_acl_access", nsACL, nil},
		{"system.posix_acl_default", nsACL, nil},
		{"system.data", 0, syscall.EOPNOTSUPP},
		{"system.posix_acl_accessx", 0, syscall.EOPNOTSUPP},
		{"os2.x", 0, syscall.EOPNOTSUPP},
		{"user", 0, syscall.EOPNOTSUPP},
		{"user.", 0, syscall.EINVAL},
		{"trusted.", 0, syscall.EINVAL},
		{"", 0, syscall.ERANGE},
		{"user." + strings.Repeat("n", 250), nsUser, nil},
		{"user." + strings.Repeat("n", 251), 0, syscall.ERANGE},
	} {
		ns, err := xattrNamespace(tc.name)
		if ns != tc.ns || !errors.Is(err, tc.err) {
			t.Errorf("xattrNamespace(%.20q) = %v, %v; want %v, %v", tc.name, ns, err, tc.ns, tc.err)
		}
	}
}

func TestXattrWritePolicy(t *testing.T) {
	var (
		root    = vnodeops.Root
		owner   = vnodeops.Cred{UID: 1000, GID: 1000}
		other   = vnodeops.Cred{UID: 2000, GID: 2000}
		file    = vnodeops.Attr{Mode: vnodeops.S_IFREG | 0o644, UID: 1000, GID: 1000}
		dir     = vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o777, UID: 1000, GID: 1000}
		sticky  = vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o1777, UID: 1000, GID: 1000}
		symlink = vnodeops.Attr{Mode: vnodeops.S_IFLNK | 0o777, UID: 1000, GID: 1000}
		fifo    = vnodeops.Attr{Mode: vnodeops.S_IFIFO | 0o666, UID: 1000, GID: 1000}
		dev     = vnodeops.Attr{Mode: vnodeops.S_IFCHR | 0o666, UID: 0, GID: 0}
	)
	eacces := errors.New("write access denied")
	granted := func() error { return nil }
	denied := func() error { return eacces }
	valid := aclValue(2, [2]uint16{aclUserObj, 6}, [2]uint16{aclUser, 4}, [2]uint16{aclGroupObj, 4}, [2]uint16{aclMask, 4}, [2]uint16{aclOther, 0})
	minimal := aclValue(2, [2]uint16{aclUserObj, 6}, [2]uint16{aclGroupObj, 4}, [2]uint16{aclOther, 4})
	v := []byte("v")
	for _, tc := range []struct {
		what   string
		cred   vnodeops.Cred
		a      vnodeops.Attr
		name   string
		value  []byte // nil: remove
		access func() error
		err    error
	}{
		{"user on a file with write access", other, file, "user.a", v, granted, nil},
		{"user on a file without", other, file, "user.a", v, denied, eacces},
		{"user removal without write access", other, file, "user.a", nil, denied, eacces},
		{"user on a directory", owner, dir, "user.a", v, granted, nil},
		{"user on a symlink", root, symlink, "user.a", v, granted, syscall.EPERM},
		{"user on a fifo", owner, fifo, "user.a", v, granted, syscall.EPERM},
		{"user on a device", root, dev, "user.a", v, granted, syscall.EPERM},
		{"user on a sticky directory, not its owner", other, sticky, "user.a", v, granted, syscall.EPERM},
		{"user on a sticky directory, its owner", owner, sticky, "user.a", v, granted, nil},
		{"user on a sticky directory, root", root, sticky, "user.a", v, granted, nil},
		{"trusted as the owner", owner, file, "trusted.a", v, granted, syscall.EPERM},
		{"trusted removal as the owner", owner, file, "trusted.a", nil, granted, syscall.EPERM},
		{"trusted as root", root, file, "trusted.a", v, denied, nil},
		{"trusted on a symlink", root, symlink, "trusted.a", v, granted, nil},
		{"security as the owner", owner, file, "security.selinux", v, granted, syscall.EPERM},
		{"security as root", root, fifo, "security.capability", v, denied, nil},
		{"acl as the owner", owner, file, "system.posix_acl_access", valid, denied, nil},
		{"acl as root", root, file, "system.posix_acl_access", minimal, denied, nil},
		{"acl as another user", other, file, "system.posix_acl_access", valid, granted, syscall.EPERM},
		{"acl removal as the owner", owner, file, "system.posix_acl_access", nil, denied, nil},
		{"acl removal as another", other, file, "system.posix_acl_access", nil, granted, syscall.EPERM},
		{"acl on a symlink", root, symlink, "system.posix_acl_access", valid, granted, syscall.EOPNOTSUPP},
		{"default acl on a file", owner, file, "system.posix_acl_default", valid, granted, syscall.EACCES},
		{"default acl on a directory", owner, dir, "system.posix_acl_default", valid, granted, nil},
		{"acl header only", owner, file, "system.posix_acl_access", aclValue(2), granted, nil},
		{"acl version 1", owner, file, "system.posix_acl_access", aclValue(1, [2]uint16{aclUserObj, 6}), granted, syscall.EOPNOTSUPP},
		{"acl cut short", owner, file, "system.posix_acl_access", valid[:len(valid)-2], granted, syscall.EINVAL},
		{"acl too short", owner, file, "system.posix_acl_access", []byte{2, 0}, granted, syscall.EINVAL},
		{"acl unknown tag", owner, file, "system.posix_acl_access", aclValue(2, [2]uint16{aclUserObj, 6}, [2]uint16{0x40, 4}, [2]uint16{aclGroupObj, 4}, [2]uint16{aclOther, 4}), granted, syscall.EINVAL},
		{"acl bad permission", owner, file, "system.posix_acl_access", aclValue(2, [2]uint16{aclUserObj, 8}, [2]uint16{aclGroupObj, 4}, [2]uint16{aclOther, 4}), granted, syscall.EINVAL},
		{"acl without other", owner, file, "system.posix_acl_access", aclValue(2, [2]uint16{aclUserObj, 6}, [2]uint16{aclGroupObj, 4}), granted, syscall.EINVAL},
		{"acl named entry without mask", owner, file, "system.posix_acl_access", aclValue(2, [2]uint16{aclUserObj, 6}, [2]uint16{aclUser, 4}, [2]uint16{aclGroupObj, 4}, [2]uint16{aclOther, 4}), granted, syscall.EINVAL},
		{"acl two masks", owner, file, "system.posix_acl_access", aclValue(2, [2]uint16{aclUserObj, 6}, [2]uint16{aclGroupObj, 4}, [2]uint16{aclMask, 4}, [2]uint16{aclMask, 4}, [2]uint16{aclOther, 4}), granted, syscall.EINVAL},
	} {
		ns, err := xattrNamespace(tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = xattrWritePolicy(tc.cred, tc.a, ns, tc.name, tc.value, tc.access)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.err)
		}
	}
}

func TestXattrFlags(t *testing.T) {
	for flags, ok := range map[int]bool{0: true, 1: true, 2: true, 3: true, 4: false, -1: false} {
		if xattrFlagsValid(flags) != ok {
			t.Errorf("xattrFlagsValid(%d) = %v", flags, !ok)
		}
	}
}
