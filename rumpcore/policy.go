package rumpcore

import (
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// The permission policy: pure functions of a credential and attributes,
// as a Unix kernel applies them (POSIX and Linux where they differ from
// nothing; the table tests in policy_test.go are the specification).
// Access to a file's contents is vnodeops.CheckAccess.

// setattrPolicy applies the ownership rules of chmod, chown, utimes,
// truncate and chflags for cred to a file with attributes a, and returns
// the change to make: mode and explicit times need the owner or root
// (EPERM); times set to now (UtimeNow, turned into now) also suit a
// caller with write access; uid changes need root; gid changes need the
// owner belonging to the new group, or root; a size needs a regular file
// (EISDIR, EINVAL) and write access. S_ISGID is dropped from a chmod by a
// non-member of the file's group, and S_ISUID (S_ISGID too when group
// execute is set) from a non-directory whose owner or group changes.
// writeAccess checks write access when the rules need it; nil means
// access was checked at open (ftruncate, futimens on a descriptor open for
// writing). sa.Mask holds no UtimeOmit time.
func setattrPolicy(cred vnodeops.Cred, a vnodeops.Attr, sa vnodeops.SetAttr, now int64, writeAccess func() error) (vnodeops.SetAttr, error) {
	owner := cred.IsRoot() || cred.UID == a.UID
	if sa.Mask&vnodeops.SetMode != 0 {
		if !owner {
			return sa, syscall.EPERM
		}
		sa.Mode &= vnodeops.PermMask
		gid := a.GID
		if sa.Mask&vnodeops.SetGID != 0 {
			gid = sa.GID
		}
		if !cred.IsRoot() && !cred.InGroup(gid) {
			sa.Mode &^= vnodeops.S_ISGID
		}
	}
	if sa.Mask&vnodeops.SetUID != 0 && sa.UID != a.UID && !cred.IsRoot() {
		return sa, syscall.EPERM
	}
	if sa.Mask&vnodeops.SetGID != 0 && sa.GID != a.GID && !cred.IsRoot() {
		if cred.UID != a.UID || !cred.InGroup(sa.GID) {
			return sa, syscall.EPERM
		}
	}
	if sa.Mask&(vnodeops.SetUID|vnodeops.SetGID) != 0 && !a.IsDir() &&
		(sa.UID != a.UID && sa.Mask&vnodeops.SetUID != 0 || sa.GID != a.GID && sa.Mask&vnodeops.SetGID != 0) {
		mode := a.Mode
		if sa.Mask&vnodeops.SetMode != 0 {
			mode = sa.Mode
		}
		clear := uint32(vnodeops.S_ISUID)
		if mode&0o010 != 0 {
			clear |= vnodeops.S_ISGID
		}
		if mode&clear != 0 {
			sa.Mode = mode & vnodeops.PermMask &^ clear
			sa.Mask |= vnodeops.SetMode
		}
	}
	timeToNow := func(t *int64) bool {
		if *t == UtimeNow {
			*t = now
			return true
		}
		return false
	}
	if sa.Mask&(vnodeops.SetAtime|vnodeops.SetMtime) != 0 {
		allNow := true
		if sa.Mask&vnodeops.SetAtime != 0 && !timeToNow(&sa.Atime) {
			allNow = false
		}
		if sa.Mask&vnodeops.SetMtime != 0 && !timeToNow(&sa.Mtime) {
			allNow = false
		}
		if !owner {
			if !allNow {
				return sa, syscall.EPERM
			}
			if writeAccess != nil {
				if err := writeAccess(); err != nil {
					return sa, err
				}
			}
		}
	}
	if sa.Mask&vnodeops.SetCtime != 0 {
		timeToNow(&sa.Ctime)
	}
	if sa.Mask&vnodeops.SetFlags != 0 && !owner {
		return sa, syscall.EPERM
	}
	if sa.Mask&vnodeops.SetSize != 0 {
		if a.IsDir() {
			return sa, syscall.EISDIR
		}
		if a.Mode&vnodeops.S_IFMT != vnodeops.S_IFREG {
			return sa, syscall.EINVAL
		}
		if int64(sa.Size) < 0 {
			return sa, syscall.EINVAL
		}
		if writeAccess != nil {
			if err := writeAccess(); err != nil {
				return sa, err
			}
		}
	}
	return sa, nil
}

// stickyDenied reports whether the sticky bit of directory dir forbids
// cred to remove or rename the file with attributes fa: only the file's
// owner, the directory's owner and root may.
func stickyDenied(cred vnodeops.Cred, dir, fa vnodeops.Attr) bool {
	return dir.Mode&vnodeops.S_ISVTX != 0 && !cred.IsRoot() &&
		cred.UID != fa.UID && cred.UID != dir.UID
}

// newOwner is the owner of a file cred makes in a directory with
// attributes dir: a set-group-ID directory passes on its group, as on BSD
// and Linux.
func newOwner(cred vnodeops.Cred, dir vnodeops.Attr) (uid, gid uint32) {
	switch {
	case dir.Mode&vnodeops.S_ISGID != 0:
		return cred.UID, dir.GID
	case cred.HasNewFileGID:
		return cred.UID, cred.NewFileGID
	}
	return cred.UID, cred.GID
}

// clearSGID drops S_ISGID from a new file's mode when its creator is not
// in the file's group, as Linux's inode_init_owner does.
func clearSGID(cred vnodeops.Cred, gid, perm uint32) uint32 {
	if perm&vnodeops.S_ISGID != 0 && !cred.IsRoot() && !cred.InGroup(gid) {
		perm &^= vnodeops.S_ISGID
	}
	return perm
}
