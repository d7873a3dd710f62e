package ext2fs

// POSIX ACLs on disk (attributes.rst, "POSIX ACLs"): system.posix_acl_*
// values are stored in a shortened form of the xattr form users see. The
// xattr form (Linux's posix_acl_xattr.h) is a_version[4] = 2, then
// entries e_tag[2] e_perm[2] e_id[4]. The disk form is a_version[4] = 1,
// then entries e_tag[2] e_perm[2], followed by e_id[4] only for named
// users and groups (ACL_USER, ACL_GROUP). Everything is little endian.

const (
	aclXattrVersion = 2
	aclDiskVersion  = 1
	aclUndefinedID  = 0xFFFFFFFF

	aclTagUserObj  = 0x01
	aclTagUser     = 0x02
	aclTagGroupObj = 0x04
	aclTagGroup    = 0x08
	aclTagMask     = 0x10
	aclTagOther    = 0x20
)

// aclNamed reports whether tag carries an e_id.
func aclNamed(tag uint16) bool { return tag == aclTagUser || tag == aclTagGroup }

func aclKnownTag(tag uint16) bool {
	switch tag {
	case aclTagUserObj, aclTagUser, aclTagGroupObj, aclTagGroup, aclTagMask, aclTagOther:
		return true
	}
	return false
}

// aclToDisk converts an ACL in xattr form to the disk form; ok is false
// when v is not a well-formed xattr-form ACL (the kernel has checked it,
// so this is a second line).
func aclToDisk(v []byte) (d []byte, ok bool) {
	if len(v) < 4 || le.Uint32(v) != aclXattrVersion || (len(v)-4)%8 != 0 {
		return nil, false
	}
	d = le.AppendUint32(make([]byte, 0, len(v)), aclDiskVersion)
	for e := v[4:]; len(e) > 0; e = e[8:] {
		tag := le.Uint16(e)
		if !aclKnownTag(tag) {
			return nil, false
		}
		d = append(d, e[:4]...)
		if aclNamed(tag) {
			d = append(d, e[4:8]...)
		}
	}
	return d, true
}

// aclFromDisk converts an ACL in disk form to the xattr form; ok is false
// for a malformed one. A value already in xattr form (version 2) is
// returned as it is.
func aclFromDisk(d []byte) (v []byte, ok bool) {
	if len(d) < 4 {
		return nil, false
	}
	switch le.Uint32(d) {
	case aclXattrVersion:
		return d, (len(d)-4)%8 == 0
	case aclDiskVersion:
	default:
		return nil, false
	}
	v = le.AppendUint32(make([]byte, 0, 2*len(d)), aclXattrVersion)
	for e := d[4:]; len(e) > 0; {
		if len(e) < 4 {
			return nil, false
		}
		tag := le.Uint16(e)
		if !aclKnownTag(tag) {
			return nil, false
		}
		v = append(v, e[:4]...)
		if !aclNamed(tag) {
			v = le.AppendUint32(v, aclUndefinedID)
			e = e[4:]
			continue
		}
		if len(e) < 8 {
			return nil, false
		}
		v = append(v, e[4:8]...)
		e = e[8:]
	}
	return v, true
}
