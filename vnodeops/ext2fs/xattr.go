package ext2fs

import (
	"sort"
	"syscall"
)

// Extended attributes (ext4 attributes.rst; the same layout as ext2's
// EA blocks): an attribute block (i_file_acl) starts with a 32-byte header
// whose first word is the magic, then entries; an inode larger than 128
// bytes may hold entries after i_extra_isize behind the same magic. An
// entry is e_name_len[1] e_name_index[1] e_value_offs[2] e_value_inum[4]
// e_value_size[4] e_hash[4] name, padded to 4 bytes; a zero word ends the
// list. Value offsets count from the block start, or in the inode from the
// first entry.

const xattrBlockHeader = 32

// xattrPrefixes maps e_name_index to the name's namespace prefix.
var xattrPrefixes = map[byte]string{
	1: "user.",
	2: "system.posix_acl_access",
	3: "system.posix_acl_default",
	4: "trusted.",
	6: "security.",
	7: "system.",
	8: "system.richacl",
}

// xattrs returns every attribute of v (in-inode first, then the block).
// The caller holds fs.mu.
func (v *vnode) xattrs() (map[string][]byte, error) {
	fs := v.fs
	out := map[string][]byte{}
	start := goodOldInodeSize + v.extraIsize()
	if fs.inodeSize > goodOldInodeSize && start+4 <= fs.inodeSize {
		area := v.raw[start:fs.inodeSize]
		if le.Uint32(area) == xattrMagic {
			if err := v.parseXattrs(area[4:], area[4:], out); err != nil {
				return nil, err
			}
		}
	}
	if blk := v.fileACL(); blk != 0 {
		if !fs.validBlock(blk) {
			return nil, fs.corrupt(v.ino, "xattr block %d out of range", blk)
		}
		b, err := fs.cache.Get(int64(blk))
		if err != nil {
			return nil, fs.corrupt(v.ino, "reading xattr block %d: %v", blk, err)
		}
		d := append([]byte(nil), b.Data()...)
		b.Release()
		if le.Uint32(d) != xattrMagic {
			return nil, fs.corrupt(v.ino, "xattr block %d has a bad magic", blk)
		}
		if err := v.parseXattrs(d[xattrBlockHeader:], d, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseXattrs reads the entries of ents; values are found in base.
func (v *vnode) parseXattrs(ents, base []byte, out map[string][]byte) error {
	fs := v.fs
	for off := 0; off+4 <= len(ents) && le.Uint32(ents[off:]) != 0; {
		if off+xattrEntryFixed > len(ents) {
			return fs.corrupt(v.ino, "xattr entry overruns its area")
		}
		e := ents[off:]
		nl := int(e[0])
		if off+xattrEntryFixed+nl > len(ents) {
			return fs.corrupt(v.ino, "xattr name overruns its area")
		}
		voff, vsize := int(le.Uint16(e[2:])), int(le.Uint32(e[8:]))
		if le.Uint32(e[4:]) != 0 {
			return fs.corrupt(v.ino, "xattr value in an inode (ea_inode) is not supported")
		}
		if vsize < 0 || voff+vsize > len(base) {
			return fs.corrupt(v.ino, "xattr value out of range")
		}
		if prefix, ok := xattrPrefixes[e[1]]; ok {
			name := prefix + string(e[xattrEntryFixed:xattrEntryFixed+nl])
			// system.data holds inline file content, not an attribute.
			if name != "system.data" {
				out[name] = append([]byte(nil), base[voff:voff+vsize]...)
			}
		}
		off += align4(xattrEntryFixed + nl)
	}
	return nil
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
