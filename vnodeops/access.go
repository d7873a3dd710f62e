package vnodeops

import "syscall"

// CheckAccess decides whether cred may access a file with attributes a in
// the way want (AccessRead|AccessWrite|AccessExec) asks, as a Unix kernel
// does: the owner class, else the group class (primary or supplementary),
// else the other class. The superuser passes read and write checks always
// and the exec check when the file is a directory or any exec bit is set.
// A Cred with AnyGroup that is not the owner gets the union of the group
// and other classes. It returns nil or EACCES.
func CheckAccess(a Attr, want uint32, cred Cred) error {
	if cred.IsRoot() {
		if want&AccessExec != 0 && !a.IsDir() && a.Mode&0o111 == 0 {
			return syscall.EACCES
		}
		return nil
	}
	var bits uint32
	switch {
	case cred.UID == a.UID:
		bits = (a.Mode >> 6) & 7
	case cred.AnyGroup:
		bits = (a.Mode>>3)&7 | a.Mode&7
	case cred.InGroup(a.GID):
		bits = (a.Mode >> 3) & 7
	default:
		bits = a.Mode & 7
	}
	if want&^bits != 0 {
		return syscall.EACCES
	}
	return nil
}
