package cd9660

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// Extended attributes and ACLs recorded with the Arbitrary Attribute
// Interchange Protocol (AAIP 2.0, Thomas Schmitt, libburnia, Mar 18 2009;
// libisofs doc/susp_aaip_2_0.txt), as xorriso writes them with --xattr,
// --xattr-any and --acl. Sections are cited by the spec's headings.
//
// "AL" entries: 'A' 'L' LENGTH 1 FLAGS, then a Component Area. FLAGS
// bit 0 (CONTINUE) is set on every AL entry of a file but the last. The
// Component Areas of a file's AL entries, in recording order and across
// CE continuation areas, are one stream of Component Records, laid out
// as SL's (RRIP 1.12 4.1.3.1): FLAGS (bit 0: CONTINUE, the component
// goes on in the next record), LEN_CP, LEN_CP content bytes. A record
// may itself be split between two AL entries ("The last Component Record
// in the Component Area of an AL System Use Entry may be continued in the
// Component Area of the next"), which joining the areas first handles.
// The components pair up as Name, Value.
//
// A Name starting with a byte 0x01-0x1F is in short notation
// ("Namespaces"): 0x01 escapes a name that really starts with such a
// byte, 0x02 is "system.", 0x03 "user.", 0x04 "isofs.", 0x05 "trusted.",
// 0x06 "security.", 0x07-0x1F are reserved. The empty Name marks the
// file's ACLs in AAIP's binary form (decodeACL).
//
// Which attributes are served: user.*, trusted.* and security.* as
// recorded; system.posix_acl_access and system.posix_acl_default from
// the binary ACL (or, without one, as recorded when xorriso's
// --xattr-any stored them as plain attributes). Hidden: isofs.*, which
// libisofs keeps for itself (isofs.di device and inode numbers, isofs.ca
// and isofs.cs checksums, isofs.nt name truncation length, isofs.st, ...)
// and which describe the image rather than the file, and which Linux's
// VFS could not ask for anyway (it knows no "isofs." namespace); other
// system.* names, names in reserved notation and names without a
// namespace, for the same reason.

// When AL entries are honoured ("Specification of the ER System Use Entry
// Values for AAIP"): only where the ER entry of RRIP is present, and then
// either announced by an ER "AAIP_0200" (SUSP 1.12), or unannounced in the
// "SUSP-1.10 downgrade" the spec allows, which is what xorriso writes
// with Rock Ridge 1.10 (its default "old_rr", ER "RRIP_1991A"). AAIP 1.0
// "AA" entries are ignored, as the spec permits. ES entries are not
// needed: "AL" is read as AAIP wherever it appears.
const (
	aaipID    = "AAIP_0200"
	rrip110ID = "RRIP_1991A"
)

// aaipAnnounced reports whether the ER identifiers of the root's "."
// record let AL entries be read (see above).
func aaipAnnounced(erIDs []string) bool {
	if slices.Contains(erIDs, aaipID) {
		return true
	}
	return slices.Contains(erIDs, rrip110ID) && !slices.ContainsFunc(erIDs, func(id string) bool {
		return rripIDs[id] && id != rrip110ID
	})
}

// AL entry and Component Record flags.
const (
	alContinue   = 1 << 0 // AL: another AL entry follows
	compContinue = 1 << 0 // Component Record: the component goes on
)

// Limits. A value is at most vnodeops.XattrSizeMax bytes (Linux's
// XATTR_SIZE_MAX), a name at most vnodeops.XattrNameMax; the joined
// Component Areas of one file at most maxALBytes (SUSP's CE chain limit,
// maxCEHops areas of a block each, keeps them far below that anyway).
const maxALBytes = 128 << 10

// alList collects the Component Areas of a file's AL entries.
type alList struct {
	data  []byte // the Component Areas, joined
	ended bool   // an AL entry without CONTINUE was seen
}

// add appends the Component Area of AL entry e (the whole entry, header
// included); it returns a description of the problem when e is too short,
// comes after the entry that ended the list, or makes the list too long.
func (l *alList) add(e []byte) string {
	switch {
	case len(e) < 5:
		return "too short"
	case l.ended:
		return "AL entry after the end of the Attribute List"
	case len(l.data)+len(e)-5 > maxALBytes:
		return fmt.Sprintf("Attribute List longer than %d bytes", maxALBytes)
	}
	l.data = append(l.data, e[5:]...)
	l.ended = e[4]&alContinue == 0
	return ""
}

// xattr is one served attribute.
type xattr struct {
	name  string
	value []byte
}

// Names of the POSIX ACL attributes.
const (
	aclAccessName  = "system.posix_acl_access"
	aclDefaultName = "system.posix_acl_default"
)

// namePrefixes are the namespaces of the short notation, by start byte.
var namePrefixes = [...]string{2: "system.", 3: "user.", 4: "isofs.", 5: "trusted.", 6: "security."}

// decodeAL decodes the joined Component Areas of a file's AL entries into
// the attributes served, in recording order (the ACLs where the binary
// ACL was recorded, access before default). A name recorded twice is
// served once, with its first value. It returns a description of the
// problem for a malformed list: a Component Record past the end, a
// component left continued, an odd number of components, a name with a
// 0x00 byte or over vnodeops.XattrNameMax bytes, a value over
// vnodeops.XattrSizeMax, or a malformed binary ACL.
func decodeAL(b []byte) ([]xattr, string) {
	var comps [][]byte
	var cur []byte
	open := false
	for len(b) > 0 {
		if len(b) < 2 || 2+int(b[1]) > len(b) {
			return nil, "AL Component Record runs past the Attribute List"
		}
		cur = append(cur, b[2:2+int(b[1])]...)
		open = b[0]&compContinue != 0
		b = b[2+int(b[1]):]
		if len(cur) > vnodeops.XattrSizeMax {
			return nil, fmt.Sprintf("AL component longer than %d bytes", vnodeops.XattrSizeMax)
		}
		if !open {
			comps = append(comps, cur)
			cur = nil
		}
	}
	switch {
	case open:
		return nil, "AL component continued past the end of the Attribute List"
	case len(comps)%2 != 0:
		return nil, "AL with a name and no value"
	}
	var out, asRecorded []xattr
	seen := map[string]bool{}
	add := func(x xattr) {
		if !seen[x.name] {
			seen[x.name] = true
			out = append(out, x)
		}
	}
	haveACL := false
	for i := 0; i < len(comps); i += 2 {
		raw, value := comps[i], comps[i+1]
		if len(raw) == 0 {
			if haveACL {
				return nil, "AL with two binary ACLs"
			}
			acls, problem := decodeACL(value)
			if problem != "" {
				return nil, problem
			}
			for _, x := range acls {
				add(x)
			}
			haveACL = true
			continue
		}
		if bytes.IndexByte(raw, 0) >= 0 {
			return nil, "AL name contains a 0x00 byte"
		}
		name, ok := expandName(raw)
		if len(name) > vnodeops.XattrNameMax {
			return nil, fmt.Sprintf("AL name longer than %d bytes", vnodeops.XattrNameMax)
		}
		switch {
		case !ok:
		case name == aclAccessName || name == aclDefaultName:
			asRecorded = append(asRecorded, xattr{name, value})
		case servedName(name):
			add(xattr{name, value})
		}
	}
	// POSIX ACLs recorded as plain attributes (xorriso --xattr-any)
	// stand in for a binary ACL that does not give them.
	for _, x := range asRecorded {
		add(x)
	}
	return out, ""
}

// expandName turns a recorded name into a full one ("Namespaces"); false
// for a name in a reserved notation (0x07-0x1F).
func expandName(raw []byte) (string, bool) {
	switch c := raw[0]; {
	case c == 0x01:
		return string(raw[1:]), true
	case int(c) < len(namePrefixes) && namePrefixes[c] != "":
		return namePrefixes[c] + string(raw[1:]), true
	case c < 0x20:
		return "", false
	}
	return string(raw), true
}

// servedName reports whether name is in a namespace served as recorded:
// user., trusted. or security., with something after the prefix.
func servedName(name string) bool {
	for _, p := range []string{"user.", "trusted.", "security."} {
		if len(name) > len(p) && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ACL entry flags of AAIP's binary ACL ("Specification of binary ACL
// representation"): bits 0-2 EXEC, WRITE, READ (the rwx bits of Linux's
// e_perm, in the same places); bit 3 QUALIFIER, Qualifier Records follow;
// bits 4-7 the TYPE.
const (
	aclPermMask  = 0x07
	aclQualifier = 0x08

	aaipTranslate  = 0  // global name/id map; skipped
	aaipUserObj    = 1  // ACL_USER_OBJ
	aaipGroupObj   = 3  // ACL_GROUP_OBJ
	aaipMask       = 5  // ACL_MASK
	aaipOther      = 6  // ACL_OTHER
	aaipSwitchMark = 8  // what follows is the default ACL
	aaipUserN      = 10 // ACL_USER, qualifier: the numeric uid (1-4 bytes, MSB first)
	aaipGroupN     = 12 // ACL_GROUP, qualifier: the numeric gid

	// A Qualifier Record head: 0-127 bytes follow and end the
	// qualifier; 128-255: head-128 bytes follow and another record.
	qualContinue = 0x80
)

// Linux's POSIX ACL xattr form (include/uapi/linux/posix_acl_xattr.h):
// a header a_version[4] = 2, then entries e_tag[2] e_perm[2] e_id[4], all
// little-endian; e_id is ACL_UNDEFINED_ID but for named users and groups.
// The tags are the bits ACL_USER_OBJ (0x01) to ACL_OTHER (0x20), in the
// order Linux wants the entries in.
const (
	aclXattrVersion = 2
	aclUndefinedID  = 0xFFFFFFFF
)

const (
	aclTagUserObj uint16 = 1 << iota
	aclTagUser
	aclTagGroupObj
	aclTagGroup
	aclTagMask
	aclTagOther
)

// aaipTags maps AAIP's ACL entry types to Linux's tags.
var aaipTags = map[byte]uint16{
	aaipUserObj: aclTagUserObj, aaipUserN: aclTagUser, aaipGroupObj: aclTagGroupObj,
	aaipGroupN: aclTagGroup, aaipMask: aclTagMask, aaipOther: aclTagOther,
}

// aclEntry is one entry of a POSIX ACL.
type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// decodeACL turns AAIP's binary ACL into system.posix_acl_access and
// system.posix_acl_default in Linux's xattr form. An access ACL of only
// the owner, group and other entries is not served: it says no more than
// the mode, and Linux keeps no attribute for it either. TRANSLATE
// entries and entries of reserved or future types are skipped, as the
// spec asks. It returns a description of the problem when a qualifier
// runs past the value, a named entry lacks its numeric id (or has more
// than 4 bytes of it), the switch mark comes twice, or an ACL is not
// valid as Linux checks (posix_acl_valid: one owner, group and other
// entry each, a mask with named entries).
func decodeACL(v []byte) ([]xattr, string) {
	var acls [2][]aclEntry
	which := 0 // 0: access, 1: default
	for len(v) > 0 {
		flags := v[0]
		v = v[1:]
		var qual []byte
		if flags&aclQualifier != 0 {
			for more := true; more; {
				if len(v) < 1 || 1+int(v[0]&^qualContinue) > len(v) {
					return nil, "AL ACL qualifier runs past the ACL"
				}
				n := int(v[0] &^ qualContinue)
				more = v[0]&qualContinue != 0
				qual = append(qual, v[1:1+n]...)
				v = v[1+n:]
			}
		}
		typ := flags >> 4
		if typ == aaipSwitchMark {
			if which == 1 {
				return nil, "AL ACL with two switch marks"
			}
			which = 1
			continue
		}
		tag, ok := aaipTags[typ]
		if !ok {
			continue // TRANSLATE, FUTURE_VERSION, reserved
		}
		e := aclEntry{tag: tag, perm: uint16(flags & aclPermMask), id: aclUndefinedID}
		if tag == aclTagUser || tag == aclTagGroup {
			if len(qual) < 1 || len(qual) > 4 {
				return nil, fmt.Sprintf("AL ACL entry for a named user or group with a %d-byte id", len(qual))
			}
			e.id = 0
			for _, c := range qual {
				e.id = e.id<<8 | uint32(c)
			}
		}
		acls[which] = append(acls[which], e)
	}
	var out []xattr
	for i, name := range []string{aclAccessName, aclDefaultName} {
		ents := acls[i]
		if len(ents) == 0 || i == 0 && !slices.ContainsFunc(ents, extendedEntry) {
			continue
		}
		if problem := checkACL(ents); problem != "" {
			return nil, fmt.Sprintf("AL %s: %s", name, problem)
		}
		// Linux's order: by tag (as the values rise), then by id.
		slices.SortStableFunc(ents, func(a, b aclEntry) int {
			return cmp.Or(cmp.Compare(a.tag, b.tag), cmp.Compare(a.id, b.id))
		})
		val := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+8*len(ents)), aclXattrVersion)
		for _, e := range ents {
			val = binary.LittleEndian.AppendUint16(val, e.tag)
			val = binary.LittleEndian.AppendUint16(val, e.perm)
			val = binary.LittleEndian.AppendUint32(val, e.id)
		}
		if len(val) > vnodeops.XattrSizeMax {
			return nil, fmt.Sprintf("AL %s over %d bytes", name, vnodeops.XattrSizeMax)
		}
		out = append(out, xattr{name, val})
	}
	return out, ""
}

// extendedEntry reports whether e is more than the mode says: a mask or a
// named user or group.
func extendedEntry(e aclEntry) bool {
	return e.tag == aclTagMask || e.tag == aclTagUser || e.tag == aclTagGroup
}

// checkACL applies Linux's posix_acl_valid rules on the entries' tags.
func checkACL(ents []aclEntry) string {
	count := map[uint16]int{}
	for _, e := range ents {
		count[e.tag]++
	}
	switch {
	case count[aclTagUserObj] != 1 || count[aclTagGroupObj] != 1 || count[aclTagOther] != 1:
		return "not one owner, group and other entry each"
	case count[aclTagMask] > 1:
		return "two masks"
	case count[aclTagMask] == 0 && count[aclTagUser]+count[aclTagGroup] > 0:
		return "named entries without a mask"
	}
	return ""
}

var _ vnodeops.Xattrs = (*node)(nil)

// xattrs reads the node's directory record again and decodes its AL
// entries; none without Rock Ridge or where AAIP is not honoured (see
// aaipAnnounced). Nothing is cached: every call reads the record and its
// continuation areas (through the sector cache) and decodes them, so a
// node costs no memory for attributes between calls. A malformed list is
// EIO with one log line naming the inode.
func (n *node) xattrs() ([]xattr, error) {
	fs := n.fs
	if !fs.rr || !fs.aaip {
		return nil, nil
	}
	at := n.rec
	if n.isDir && n.ino != fs.rootIno {
		var err error
		if at, err = n.namingRecord(); err != nil {
			return nil, err
		}
	}
	rec, err := fs.readRecord(at)
	if err != nil {
		return nil, err
	}
	info := &suInfo{al: &alList{}}
	if problem := fs.parseSUInto(info, &rec, fs.skipOf(&rec)); problem != "" {
		return nil, fs.corrupt(n.ino, "%s", problem)
	}
	if len(info.al.data) > 0 && !info.al.ended {
		return nil, fs.corrupt(n.ino, "last AL entry asks to be continued")
	}
	attrs, problem := decodeAL(info.al.data)
	if problem != "" {
		return nil, fs.corrupt(n.ino, "%s", problem)
	}
	return attrs, nil
}

// namingRecord returns the address of the record that names directory n
// in its parent, which is where xorriso records a directory's AL entries
// (its "." record has them only for the root): the directory record
// whose extent is n's or, for a relocated directory (RRIP 4.1.5), the
// placeholder whose CL points to n. Without one, the "." record.
func (n *node) namingRecord() (int64, error) {
	fs := n.fs
	pino, err := n.parent()
	if err != nil {
		return 0, err
	}
	parent, err := fs.readNode(pino)
	if err != nil {
		return 0, err
	}
	if !parent.isDir {
		return 0, fs.corrupt(n.ino, "directory's parent %d is not a directory", pino)
	}
	at := int64(n.ino)
	find := func(match func(rec *dirRec) bool) (bool, error) {
		found := false
		err := parent.records(0, func(_ int64, rec *dirRec) (bool, error) {
			if !rec.isDot() && !rec.isDotDot() && match(rec) {
				at, found = rec.addr, true
			}
			return !found, nil
		})
		return found, err
	}
	if found, err := find(func(rec *dirRec) bool {
		return rec.flags&flagDir != 0 && fs.dirIno(rec) == n.ino
	}); found || err != nil {
		return at, err
	}
	_, err = find(func(rec *dirRec) bool {
		if rec.flags&flagDir != 0 {
			return false
		}
		info, problem := fs.parseSU(rec, fs.skipOf(rec))
		return problem == "" && info.hasCL && uint64(info.cl)*uint64(fs.bs) == n.ino
	})
	return at, err
}

// Getxattr returns the value of attribute name as recorded (POSIX ACLs in
// Linux's xattr form): ENODATA when the file has no such attribute or it
// is not served (isofs.* and the like, see above), EIO for a malformed
// Attribute List. The value is the caller's.
func (n *node) Getxattr(name string) ([]byte, error) {
	attrs, err := n.xattrs()
	if err != nil {
		return nil, err
	}
	for _, x := range attrs {
		if x.name == name {
			return x.value, nil
		}
	}
	return nil, syscall.ENODATA
}

// Listxattr returns the names of the attributes served, in recording
// order; EIO for a malformed Attribute List.
func (n *node) Listxattr() ([]string, error) {
	attrs, err := n.xattrs()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(attrs))
	for _, x := range attrs {
		names = append(names, x.name)
	}
	return names, nil
}
