package blkdev

import (
	"encoding/binary"
	"fmt"
)

// BSD disklabel layout (NetBSD sys/sys/disklabel.h, struct disklabel): a
// NetBSD, FreeBSD or OpenBSD disk divides an MBR partition ("slice", of
// type 0xA9, 0xA5 or 0xA6) further with a disklabel in the slice's
// sector 1 (LABELSECTOR 1, LABELOFFSET 0 on x86). Fields, in the byte
// order of the machine that wrote it:
//
//	0   d_magic       4  0x82564557 (DISKMAGIC)
//	40  d_secsize     4  bytes per sector
//	132 d_magic2      4  DISKMAGIC again
//	136 d_checksum    2  XOR of the 16-bit words of the label is 0
//	138 d_npartitions 2  (at most MAXPARTITIONS, 22 on NetBSD)
//	148 d_partitions     16 bytes each: p_size (4, sectors), p_offset (4,
//	                     sectors from the start of the disk), p_fsize (4),
//	                     p_fstype (1), p_frag (1), p_cpg (2)
//
// p_fstype 0 is FS_UNUSED, 1 FS_SWAP, 7 FS_BSDFFS. Like Linux
// (block/partitions/msdos.c, parse_bsd), FreeBSD labels whose c partition
// starts at 0 give offsets relative to the slice, subpartitions that
// equal the slice or do not fit inside it are left out, and the others
// are numbered after the MBR's primary and logical partitions.
const (
	diskMagic        = 0x82564557
	labelHeaderLen   = 148
	labelPartLen     = 16
	maxLabelParts    = 22
	fsTypeUnused     = 0
	fsTypeBSDFFS     = 7
	labelSectorIndex = 1
)

// isBSDSliceType reports whether an MBR type holds a BSD disklabel:
// NetBSD (0xA9), FreeBSD (0xA5), OpenBSD (0xA6).
func isBSDSliceType(t string) bool { return t == "0xa9" || t == "0xa5" || t == "0xa6" }

// bsdFSTypes names the p_fstype values a Partition's Type shows.
var bsdFSTypes = map[byte]string{1: "swap", 7: "4.2BSD", 8: "MSDOS", 9: "4.4LFS", 17: "ext2fs", 18: "NTFS", 19: "RAID", 20: "ccd", 27: "Apple UFS"}

// disklabelParts reads the disklabel of slice s of dev, if any, and
// returns its subpartitions numbered from next. A missing label gives
// nothing; a label whose checksum or sizes are wrong gives an error
// matching ErrBadPartitionTable.
func disklabelParts(dev Device, s Partition, next int) ([]Partition, error) {
	const sec = mbrSectorSize
	if s.Size < (labelSectorIndex+1)*sec {
		return nil, nil
	}
	raw := make([]byte, sec)
	if _, err := dev.ReadAt(raw, s.Start+labelSectorIndex*sec); err != nil {
		return nil, fmt.Errorf("image %s: reading the disklabel of partition %d: %w", dev.Name(), s.Number, err)
	}
	var bo binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint32(raw) == diskMagic:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(raw) == diskMagic:
		bo = binary.BigEndian
	default:
		return nil, nil
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("image %s: disklabel of partition %d: %s: %w", dev.Name(), s.Number, fmt.Sprintf(format, a...), ErrBadPartitionTable)
	}
	if bo.Uint32(raw[132:]) != diskMagic {
		return nil, bad("second magic number missing")
	}
	if ss := bo.Uint32(raw[40:]); ss != sec {
		return nil, bad("%d-byte sectors", ss)
	}
	n := int(bo.Uint16(raw[138:]))
	if n > maxLabelParts || labelHeaderLen+n*labelPartLen > sec {
		return nil, bad("%d partitions", n)
	}
	var sum uint16
	for i := 0; i < labelHeaderLen+n*labelPartLen; i += 2 {
		sum ^= bo.Uint16(raw[i:])
	}
	if sum != 0 {
		return nil, bad("checksum mismatch")
	}
	part := func(i int) []byte { return raw[labelHeaderLen+i*labelPartLen:] }
	relative := s.Type == "0xa5" && n > 2 && bo.Uint32(part(2)[4:]) == 0
	var out []Partition
	for i := range n {
		p := part(i)
		size, off, fstype := int64(bo.Uint32(p)), int64(bo.Uint32(p[4:])), p[12]
		if fstype == fsTypeUnused || size == 0 {
			continue
		}
		start := off * sec
		if relative {
			start += s.Start
		}
		size *= sec
		if start == s.Start && size == s.Size {
			continue // the slice itself, listed already
		}
		if start < s.Start || start+size > s.Start+s.Size {
			continue // outside the slice (the whole-disk partition)
		}
		typ := bsdFSTypes[fstype]
		if typ == "" {
			typ = fmt.Sprintf("fstype %d", fstype)
		}
		out = append(out, Partition{Number: next, Start: start, Size: size, Type: typ, Name: string(rune('a' + i))})
		next++
	}
	return out, nil
}

// addDisklabels appends the subpartitions of every BSD slice in parts,
// numbered after the highest number there (at least 5), as Linux does.
func addDisklabels(dev Device, parts []Partition) ([]Partition, error) {
	next := 5
	for _, p := range parts {
		next = max(next, p.Number+1)
	}
	out := parts
	for _, p := range parts {
		if !isBSDSliceType(p.Type) {
			continue
		}
		sub, err := disklabelParts(dev, p, next)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
		next += len(sub)
	}
	return out, nil
}
