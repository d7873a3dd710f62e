package ext2fs

import (
	"errors"
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

// errStopWalk ends walkXattrs early without an error.
var errStopWalk = errors.New("stop")

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

// xattrEntry is one entry of an attribute list, its value not yet
// checked: voff counts from the list's value base.
type xattrEntry struct {
	index       byte
	name        string
	voff, vsize int
	inum        uint32
}

// walkXattrs calls fn for each entry of ents, checking that each lies in
// ents; fn checks the value it uses.
func (v *vnode) walkXattrs(ents []byte, fn func(xattrEntry) error) error {
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
		err := fn(xattrEntry{
			index: e[1],
			name:  string(e[xattrEntryFixed : xattrEntryFixed+nl]),
			voff:  int(le.Uint16(e[2:])),
			vsize: int(le.Uint32(e[8:])),
			inum:  le.Uint32(e[4:]),
		})
		if err != nil {
			return err
		}
		off += align4(xattrEntryFixed + nl)
	}
	return nil
}

// inodeXattrs returns the entries stored in the inode after
// i_extra_isize (their value base too), or nil.
func (v *vnode) inodeXattrs() []byte {
	fs := v.fs
	start := goodOldInodeSize + v.extraIsize()
	if fs.inodeSize <= goodOldInodeSize || start+4 > fs.inodeSize {
		return nil
	}
	area := v.raw[start:fs.inodeSize]
	if le.Uint32(area) != xattrMagic {
		return nil
	}
	return area[4:]
}

// xattrs returns every attribute of v (in-inode first, then the block).
// The caller holds fs.mu.
func (v *vnode) xattrs() (map[string][]byte, error) {
	fs := v.fs
	out := map[string][]byte{}
	if ents := v.inodeXattrs(); ents != nil {
		if err := v.collectXattrs(ents, ents, out); err != nil {
			return nil, err
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
		if err := v.collectXattrs(d[xattrBlockHeader:], d, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// collectXattrs adds the attributes of ents, whose values are in base,
// to out.
func (v *vnode) collectXattrs(ents, base []byte, out map[string][]byte) error {
	fs := v.fs
	return v.walkXattrs(ents, func(e xattrEntry) error {
		if e.inum != 0 {
			return fs.corrupt(v.ino, "xattr value in an inode (ea_inode) is not supported")
		}
		if e.vsize < 0 || e.voff+e.vsize > len(base) {
			return fs.corrupt(v.ino, "xattr value out of range")
		}
		if prefix, ok := xattrPrefixes[e.index]; ok {
			name := prefix + e.name
			// system.data holds inline file content, not an attribute.
			if name != "system.data" {
				out[name] = append([]byte(nil), base[e.voff:e.voff+e.vsize]...)
			}
		}
		return nil
	})
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
