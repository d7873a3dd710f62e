package ext2fs

import (
	"slices"
	"sort"
	"syscall"
)

// Extended attributes (Linux Documentation/filesystems/ext4/attributes.rst,
// "Extended Attributes"; the same layout as ext2's EA blocks): an
// attribute block (i_file_acl) starts with a 32-byte header (h_magic,
// h_refcount, h_blocks, h_hash, h_checksum, reserved), then entries; an
// inode larger than 128 bytes may hold entries after i_extra_isize behind
// the same magic. An entry is e_name_len[1] e_name_index[1]
// e_value_offs[2] e_value_inum[4] e_value_size[4] e_hash[4] name, padded
// to 4 bytes; a zero word ends the list. Value offsets count from the
// block start, or in the inode from the first entry. Writing is in
// xattr_write.go.

const (
	xattrBlockHeader = 32
	xattrHBlocksOff  = 8  // h_blocks: always 1
	xattrHHashOff    = 12 // h_hash
	xattrHCsumOff    = 16 // h_checksum (metadata_csum)
	xattrEHashOff    = 12 // e_hash in an entry
)

// Name indexes (attributes.rst, "Attribute Name Indices").
const (
	xattrIndexUser       = 1
	xattrIndexACLAccess  = 2
	xattrIndexACLDefault = 3
	xattrIndexTrusted    = 4
	xattrIndexSecurity   = 6
)

// xattrPrefixes maps e_name_index to the name's namespace prefix.
var xattrPrefixes = map[byte]string{
	xattrIndexUser:       "user.",
	xattrIndexACLAccess:  "system.posix_acl_access",
	xattrIndexACLDefault: "system.posix_acl_default",
	xattrIndexTrusted:    "trusted.",
	xattrIndexSecurity:   "security.",
	xattrIndexSys:        "system.",
	8:                    "system.richacl",
}

// xattrRec is one attribute as stored: its name index, the name after
// the prefix, and its value in the on-disk form; or, for a value kept in
// an inode of its own (ea_inode), that inode's number and no value.
type xattrRec struct {
	index byte
	name  string
	value []byte
	inum  uint32
}

// fullName is the attribute's name as users see it; ok is false for an
// index without a known prefix.
func (r xattrRec) fullName() (name string, ok bool) {
	prefix, ok := xattrPrefixes[r.index]
	return prefix + r.name, ok
}

// parseXattrs returns the entries of ents, whose value offsets count from
// base, checking that each lies in its area. Values are copied. Entries
// whose value is in an inode (ea_inode) are returned without one; the
// callers refuse them.
func (v *vnode) parseXattrs(ents, base []byte) ([]xattrRec, error) {
	fs := v.fs
	var out []xattrRec
	for off := 0; off+4 <= len(ents) && le.Uint32(ents[off:]) != 0; {
		if off+xattrEntryFixed > len(ents) {
			return nil, fs.corrupt(v.ino, "xattr entry overruns its area")
		}
		e := ents[off:]
		nl := int(e[0])
		if off+xattrEntryFixed+nl > len(ents) {
			return nil, fs.corrupt(v.ino, "xattr name overruns its area")
		}
		r := xattrRec{
			index: e[1],
			name:  string(e[xattrEntryFixed : xattrEntryFixed+nl]),
			inum:  le.Uint32(e[4:]),
		}
		if r.inum == 0 {
			voff, vsize := int(le.Uint16(e[2:])), int64(le.Uint32(e[8:]))
			if int64(voff)+vsize > int64(len(base)) {
				return nil, fs.corrupt(v.ino, "xattr value out of range")
			}
			r.value = slices.Clone(base[voff : voff+int(vsize)])
		}
		out = append(out, r)
		off += align4(xattrEntryFixed + nl)
	}
	return out, nil
}

// inodeXattrs returns the entries stored in the inode after
// i_extra_isize (their value base too), or nil. An i_extra_isize of 0
// leaves no room for them (the magic would overlay i_extra_isize itself).
func (v *vnode) inodeXattrs() []byte {
	fs := v.fs
	start := goodOldInodeSize + v.extraIsize()
	if fs.inodeSize <= goodOldInodeSize || v.extraIsize() == 0 || start+4 > fs.inodeSize {
		return nil
	}
	area := v.raw[start:fs.inodeSize]
	if le.Uint32(area) != xattrMagic {
		return nil
	}
	return area[4:]
}

// xattrState is what a file's attributes are made of on disk.
type xattrState struct {
	ibody    []xattrRec // in the inode, in on-disk order
	blk      uint64     // the attribute block, or 0
	block    []xattrRec // in the block, in on-disk order
	refcount uint32     // the block's h_refcount
}

// loadXattrs reads and checks every attribute of v. The caller holds
// fs.mu.
func (v *vnode) loadXattrs() (xattrState, error) {
	var st xattrState
	if ents := v.inodeXattrs(); ents != nil {
		recs, err := v.parseXattrs(ents, ents)
		if err != nil {
			return st, err
		}
		st.ibody = recs
	}
	blk := v.fileACL()
	if blk == 0 {
		return st, nil
	}
	d, err := v.fs.readXattrBlock(v.ino, blk)
	if err != nil {
		return st, err
	}
	recs, err := v.parseXattrs(d[xattrBlockHeader:], d)
	if err != nil {
		return st, err
	}
	st.blk, st.block, st.refcount = blk, recs, le.Uint32(d[xattrBlkRefOff:])
	return st, nil
}

// readXattrBlock returns a copy of the attribute block blk of inode ino
// after checking its header (magic, h_blocks, h_refcount) and, under
// metadata_csum, its checksum.
func (fs *fsys) readXattrBlock(ino, blk uint64) ([]byte, error) {
	if !fs.validBlock(blk) {
		return nil, fs.corrupt(ino, "xattr block %d out of range", blk)
	}
	b, err := fs.cache.Get(int64(blk))
	if err != nil {
		return nil, fs.corrupt(ino, "reading xattr block %d: %v", blk, err)
	}
	d := slices.Clone(b.Data())
	b.Release()
	switch {
	case le.Uint32(d) != xattrMagic:
		return nil, fs.corrupt(ino, "xattr block %d has a bad magic", blk)
	case le.Uint32(d[xattrHBlocksOff:]) != 1:
		return nil, fs.corrupt(ino, "xattr block %d claims %d blocks", blk, le.Uint32(d[xattrHBlocksOff:]))
	case le.Uint32(d[xattrBlkRefOff:]) == 0:
		return nil, fs.corrupt(ino, "xattr block %d has no reference", blk)
	case fs.csum && le.Uint32(d[xattrHCsumOff:]) != fs.xattrBlockCsum(blk, d):
		return nil, fs.corrupt(ino, "xattr block %d checksum mismatch", blk)
	}
	return d, nil
}

// xattrs returns every attribute of v by name (in-inode first, then the
// block), POSIX ACLs in their xattr form; system.data (inline file
// content) and unknown name indexes are left out. The caller holds fs.mu.
func (v *vnode) xattrs() (map[string][]byte, error) {
	st, err := v.loadXattrs()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, r := range slices.Concat(st.ibody, st.block) {
		if r.inum != 0 {
			return nil, v.fs.corrupt(v.ino, "xattr value in an inode (ea_inode) is not supported")
		}
		name, ok := r.fullName()
		if !ok || name == "system.data" {
			continue
		}
		val := r.value
		if r.index == xattrIndexACLAccess || r.index == xattrIndexACLDefault {
			if val, ok = aclFromDisk(r.value); !ok {
				return nil, v.fs.corrupt(v.ino, "malformed POSIX ACL in %s", name)
			}
		}
		if _, dup := out[name]; !dup {
			out[name] = val
		}
	}
	return out, nil
}

// Getxattr implements vnodeops.Xattrs.
func (v *vnode) Getxattr(name string) ([]byte, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	all, err := v.xattrs()
	if err != nil {
		return nil, err
	}
	val, ok := all[name]
	if !ok {
		return nil, syscall.ENODATA
	}
	return val, nil
}

// Listxattr implements vnodeops.Xattrs.
func (v *vnode) Listxattr() ([]string, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	all, err := v.xattrs()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
