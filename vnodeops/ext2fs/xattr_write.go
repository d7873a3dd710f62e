package ext2fs

import (
	"slices"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// Writing extended attributes (Linux Documentation/filesystems/ext4/
// attributes.rst, "Extended Attributes"; layout in xattr.go).
//
// Placement follows Linux: a new or changed attribute goes into the inode
// body when it fits there (inodes larger than 128 bytes with a non-zero
// i_extra_isize), otherwise into the attribute block; attributes that do
// not change stay where they are. In the inode the entries keep their
// order; in the block they are sorted by name index, name length and
// name, as the kernel's lookup (which stops early) and e2fsprogs expect.
// Values are packed from the end of their area downwards, each padded to
// 4 bytes with zeros.
//
// Each entry carries e_hash (attributes.rst, "Extended attribute
// hashing"), the block carries h_hash over its entries' hashes and, under
// metadata_csum, h_checksum.
//
// A block whose h_refcount is above 1 is shared by several inodes (Linux
// shares identical blocks): it is never changed in place; the file gets
// a copy, and the shared block loses one reference. A block whose last
// reference goes is freed. Order on disk: a new block is written before
// the inode points at it, and the old one is released after.

var _ vnodeops.XattrWriter = (*vnode)(nil)

// Hash shifts of attributes.rst, "Extended attribute hashing".
const (
	xattrNameHashShift  = 5
	xattrValueHashShift = 16
	xattrBlockHashShift = 16
)

// xattrEntryHash is e_hash of an entry with this name (after the prefix)
// and value: the name's bytes, then the value's little-endian 32-bit
// words (zero-padded), each folded in with a rotate and xor.
func xattrEntryHash(name string, value []byte) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h<<xattrNameHashShift ^ h>>(32-xattrNameHashShift) ^ uint32(name[i])
	}
	for i := 0; i < len(value); i += 4 {
		var w [4]byte
		copy(w[:], value[i:])
		h = h<<xattrValueHashShift ^ h>>(32-xattrValueHashShift) ^ le.Uint32(w[:])
	}
	return h
}

// xattrBlockHash is h_hash of a block whose entries have the given
// hashes: each folded in with a rotate and xor; 0 if any of them is 0.
func xattrBlockHash(hashes []uint32) uint32 {
	var h uint32
	for _, e := range hashes {
		if e == 0 {
			return 0
		}
		h = h<<xattrBlockHashShift ^ h>>(32-xattrBlockHashShift) ^ e
	}
	return h
}

// xattrBlockCsum is the metadata_csum checksum of attribute block blk
// with contents d (checksums.rst): crc32c from the file system's seed
// over the block number as a little-endian 64-bit word, then over the
// block with h_checksum taken as zero.
func (fs *fsys) xattrBlockCsum(blk uint64, d []byte) uint32 {
	var n [8]byte
	le.PutUint64(n[:], blk)
	c := crc32cRaw(fs.csumSeed, n[:])
	c = crc32cRaw(c, d[:xattrHCsumOff])
	c = crc32cRaw(c, make([]byte, 4))
	return crc32cRaw(c, d[xattrHCsumOff+4:])
}

// xattrWritable lists the namespaces written, by name index: a prefix,
// or a whole name for the POSIX ACLs.
var xattrWritable = []struct {
	index  byte
	prefix string
	whole  bool
}{
	{xattrIndexUser, "user.", false},
	{xattrIndexACLAccess, "system.posix_acl_access", true},
	{xattrIndexACLDefault, "system.posix_acl_default", true},
	{xattrIndexTrusted, "trusted.", false},
	{xattrIndexSecurity, "security.", false},
}

// xattrKey splits a full name into its name index and the stored name.
func xattrKey(name string) (index byte, short string, ok bool) {
	for _, w := range xattrWritable {
		if w.whole && name == w.prefix {
			return w.index, "", true
		}
		if !w.whole && strings.HasPrefix(name, w.prefix) {
			return w.index, name[len(w.prefix):], true
		}
	}
	return 0, "", false
}

// xattrSpace is the room recs take in an entry table with its values:
// entries padded to 4 bytes, values padded to 4 bytes, and the zero word
// that ends the table.
func xattrSpace(recs []xattrRec) int {
	n := 4
	for _, r := range recs {
		n += align4(xattrEntryFixed+len(r.name)) + align4(len(r.value))
	}
	return n
}

// xattrBlockCmp orders block entries: by name index, name length, name.
func xattrBlockCmp(a, b xattrRec) int {
	if a.index != b.index {
		return int(a.index) - int(b.index)
	}
	if len(a.name) != len(b.name) {
		return len(a.name) - len(b.name)
	}
	return strings.Compare(a.name, b.name)
}

// encodeXattrs writes recs into area: the entry table from entOff on,
// the values packed downwards from the end of area, their offsets
// counted from base. It returns the entries' hashes. The caller has
// checked that they fit (xattrSpace).
func encodeXattrs(area []byte, entOff, base int, recs []xattrRec) []uint32 {
	clear(area[entOff:])
	hashes := make([]uint32, 0, len(recs))
	off, end := entOff, len(area)
	for _, r := range recs {
		e := area[off:]
		e[0], e[1] = byte(len(r.name)), r.index
		if len(r.value) > 0 {
			end -= align4(len(r.value))
			copy(area[end:], r.value)
			le.PutUint16(e[2:], uint16(end-base))
		}
		le.PutUint32(e[8:], uint32(len(r.value)))
		h := xattrEntryHash(r.name, r.value)
		le.PutUint32(e[xattrEHashOff:], h)
		copy(e[xattrEntryFixed:], r.name)
		hashes = append(hashes, h)
		off += align4(xattrEntryFixed + len(r.name))
	}
	return hashes
}

// ibodyRoom is the room for entries, values and the ending word in v's
// inode body after the magic, or 0 when the inode keeps none.
func (v *vnode) ibodyRoom() int {
	fs := v.fs
	if fs.inodeSize <= goodOldInodeSize || v.extraIsize() == 0 {
		return 0
	}
	n := fs.inodeSize - goodOldInodeSize - v.extraIsize() - 4
	if n < 4+xattrEntryFixed {
		return 0
	}
	return n
}

// writeIbody lays recs out in v's inode body (in memory): the magic and
// the entries, or zeros when there are none.
func (v *vnode) writeIbody(recs []xattrRec) {
	area := v.raw[goodOldInodeSize+v.extraIsize() : v.fs.inodeSize]
	clear(area)
	if len(recs) == 0 {
		return
	}
	le.PutUint32(area, xattrMagic)
	encodeXattrs(area, 4, 4, recs)
}

// buildXattrBlock returns the contents of block blk holding recs (sorted)
// with reference count ref.
func (fs *fsys) buildXattrBlock(blk uint64, recs []xattrRec, ref uint32) []byte {
	d := make([]byte, fs.bs)
	le.PutUint32(d, xattrMagic)
	le.PutUint32(d[xattrBlkRefOff:], ref)
	le.PutUint32(d[xattrHBlocksOff:], 1)
	hashes := encodeXattrs(d, xattrBlockHeader, 0, recs)
	le.PutUint32(d[xattrHHashOff:], xattrBlockHash(hashes))
	fs.sealXattrBlock(blk, d)
	return d
}

// sealXattrBlock sets the checksum of attribute block blk under
// metadata_csum.
func (fs *fsys) sealXattrBlock(blk uint64, d []byte) {
	if fs.csum {
		le.PutUint32(d[xattrHCsumOff:], fs.xattrBlockCsum(blk, d))
	}
}

// storeBlock copies d into the cache's buffer of block blk, fresh says a
// newly allocated one, and marks it dirty.
func (fs *fsys) storeBlock(ino, blk uint64, d []byte, fresh bool) error {
	get := fs.cache.Get
	if fresh {
		get = fs.cache.GetNew
	}
	b, err := get(int64(blk))
	if err != nil {
		return fs.corrupt(ino, "xattr block %d: %v", blk, err)
	}
	copy(b.Data(), d)
	b.MarkDirty()
	b.Release()
	return nil
}

func (v *vnode) setFileACL(blk uint64) {
	v.put32(inFileACLLo, uint32(blk))
	if v.fs.incompat&incompat64bit != 0 {
		v.put16(inFileACLHi, uint16(blk>>32))
	}
}

// Setxattr implements vnodeops.XattrWriter. POSIX ACLs are converted to
// their disk form. ENOSPC when neither the inode body nor the block has
// room, E2BIG for a value that fits neither even alone, EOPNOTSUPP for
// system.* names other than the ACLs and on revision 0 file systems, EPERM
// on an immutable or append-only file.
func (v *vnode) Setxattr(name string, value []byte, flags int) error {
	idx, short, ok := xattrKey(name)
	if !ok {
		return syscall.EOPNOTSUPP
	}
	if idx == xattrIndexACLAccess || idx == xattrIndexACLDefault {
		if value, ok = aclToDisk(value); !ok {
			return syscall.EINVAL
		}
	} else {
		value = slices.Clone(value)
	}
	if value == nil {
		value = []byte{}
	}
	return v.changeXattr(xattrRec{index: idx, name: short, value: value}, flags)
}

// Removexattr implements vnodeops.XattrWriter.
func (v *vnode) Removexattr(name string) error {
	idx, short, ok := xattrKey(name)
	if !ok {
		return syscall.EOPNOTSUPP
	}
	return v.changeXattr(xattrRec{index: idx, name: short}, vnodeops.XattrReplace)
}

// changeXattr sets the attribute r, or removes it when r.value is nil,
// under the XattrCreate/XattrReplace rules of flags. Nothing changes on
// an error.
func (v *vnode) changeXattr(r xattrRec, flags int) error {
	fs := v.fs
	if len(r.name) > 255 {
		return syscall.ERANGE
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.checkWritable(); err != nil {
		return err
	}
	if fs.rev < 1 {
		return syscall.EOPNOTSUPP // no feature flags to announce ext_attr with
	}
	if v.flags()&(flagImmutable|flagAppend) != 0 {
		return syscall.EPERM
	}
	st, err := v.loadXattrs()
	if err != nil {
		return err
	}
	for _, x := range slices.Concat(st.ibody, st.block) {
		if x.inum != 0 {
			return fs.corrupt(v.ino, "xattr value in an inode (ea_inode) is not supported")
		}
	}
	same := func(x xattrRec) bool { return x.index == r.index && x.name == r.name }
	exists := slices.ContainsFunc(st.ibody, same) || slices.ContainsFunc(st.block, same)
	switch {
	case exists && flags&vnodeops.XattrCreate != 0:
		return syscall.EEXIST
	case !exists && flags&vnodeops.XattrReplace != 0:
		return syscall.ENODATA
	}
	ibody := slices.DeleteFunc(slices.Clone(st.ibody), same)
	block := slices.DeleteFunc(slices.Clone(st.block), same)
	if r.value != nil {
		room, blockRoom := v.ibodyRoom(), fs.bs-xattrBlockHeader
		switch {
		case room > 0 && xattrSpace(append(ibody, r)) <= room:
			ibody = append(ibody, r)
		case xattrSpace(append(block, r)) <= blockRoom:
			block = append(block, r)
			slices.SortStableFunc(block, xattrBlockCmp)
		case xattrSpace([]xattrRec{r}) > max(room, blockRoom):
			return syscall.E2BIG
		default:
			return syscall.ENOSPC
		}
	}
	release, err := v.placeXattrBlock(st, block)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(ibody, st.ibody, xattrRecEqual) {
		v.writeIbody(ibody)
	}
	if fs.compat&compatExtAttr == 0 {
		fs.compat |= compatExtAttr
		le.PutUint32(fs.sbRaw[sbFeatureCompat:], fs.compat)
		fs.sbDirty = true
	}
	v.touch(false, true)
	if err := v.sync(); err != nil {
		return err
	}
	if release != 0 {
		return fs.releaseXattrBlock(v.ino, release)
	}
	return nil
}

func xattrRecEqual(a, b xattrRec) bool {
	return a.index == b.index && a.name == b.name && slices.Equal(a.value, b.value)
}

// placeXattrBlock makes v's attribute block hold block (sorted), given
// what it holds now (st): rewritten in place when v alone references it,
// copied to a new block when it is shared, allocated when there is none,
// dropped when block is empty. It updates v's i_file_acl and i_blocks in
// memory and returns a block to release once the inode is written (0 for
// none). On an error nothing has changed.
func (v *vnode) placeXattrBlock(st xattrState, block []xattrRec) (release uint64, err error) {
	fs := v.fs
	switch {
	case slices.EqualFunc(block, st.block, xattrRecEqual):
		return 0, nil // unchanged (or none before and after)
	case len(block) == 0:
		v.setFileACL(0)
		v.addBlocks(-1)
		return st.blk, nil
	case st.blk != 0 && st.refcount == 1:
		return 0, fs.storeBlock(v.ino, st.blk, fs.buildXattrBlock(st.blk, block, 1), false)
	}
	goal := st.blk
	if goal == 0 {
		goal = v.allocGoal()
	}
	nb, err := fs.allocBlock(goal, v.mayUseReserved())
	if err != nil {
		return 0, err
	}
	if err := fs.storeBlock(v.ino, nb, fs.buildXattrBlock(nb, block, 1), true); err != nil {
		fs.freeBlock(nb)
		return 0, err
	}
	v.setFileACL(nb)
	if st.blk == 0 {
		v.addBlocks(1)
	}
	return st.blk, nil // a shared block loses v's reference
}

// releaseXattrBlock drops one reference to the extended attribute block
// blk (h_refcount) and frees it when no reference remains. The caller has
// already cleared or replaced the inode's pointer to it.
func (fs *fsys) releaseXattrBlock(ino, blk uint64) error {
	if !fs.validBlock(blk) {
		return fs.corrupt(ino, "xattr block %d out of range", blk)
	}
	b, err := fs.cache.Get(int64(blk))
	if err != nil {
		return fs.corrupt(ino, "reading xattr block %d: %v", blk, err)
	}
	d := b.Data()
	if le.Uint32(d) != xattrMagic {
		b.Release()
		return fs.corrupt(ino, "xattr block %d has a bad magic", blk)
	}
	ref := le.Uint32(d[xattrBlkRefOff:])
	if ref > 1 {
		le.PutUint32(d[xattrBlkRefOff:], ref-1)
		fs.sealXattrBlock(blk, d)
		b.MarkDirty()
		b.Release()
		return nil
	}
	b.Release()
	return fs.freeBlock(blk)
}
