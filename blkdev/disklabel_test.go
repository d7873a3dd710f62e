package blkdev

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// labelPart is one subpartition of a crafted disklabel.
type labelPart struct {
	size, offset uint32
	fstype       byte
}

// putDisklabel writes a disklabel with parts into the sector at sec, in
// byte order bo, with a correct checksum.
func putDisklabel(sec []byte, bo binary.ByteOrder, parts []labelPart) {
	clear(sec)
	bo.PutUint32(sec[0:], diskMagic)
	bo.PutUint32(sec[40:], 512)
	bo.PutUint32(sec[132:], diskMagic)
	bo.PutUint16(sec[138:], uint16(len(parts)))
	for i, p := range parts {
		e := sec[labelHeaderLen+i*labelPartLen:]
		bo.PutUint32(e[0:], p.size)
		bo.PutUint32(e[4:], p.offset)
		e[12] = p.fstype
	}
	var sum uint16
	for i := 0; i < labelHeaderLen+len(parts)*labelPartLen; i += 2 {
		sum ^= bo.Uint16(sec[i:])
	}
	bo.PutUint16(sec[136:], sum)
}

// craftNetBSD builds a 10000-sector disk as NetBSD's installer lays it
// out: one MBR partition of type 0xA9 from sector 63, and in its sector
// 1 a disklabel with a (FFS), b (swap), c (the slice), d (the disk) and
// e (an MS-DOS partition).
func craftNetBSD(bo binary.ByteOrder) []byte {
	img := make([]byte, 10000*512)
	putRecord(sector(img, 0), 0, 0x80, 0xA9, 63, 9000)
	putDisklabel(sector(img, 64), bo, []labelPart{
		{6000, 63, fsTypeBSDFFS},
		{1000, 6063, 1},
		{9000, 63, fsTypeUnused},
		{10000, 0, fsTypeUnused},
		{500, 7063, 8},
	})
	return img
}

func TestDisklabel(t *testing.T) {
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		dev := NewMemDeviceFrom(craftNetBSD(bo), true)
		parts, err := Partitions(dev)
		if err != nil {
			t.Fatal(err)
		}
		want := []Partition{
			{Number: 1, Start: 63 * 512, Size: 9000 * 512, Type: "0xa9"},
			{Number: 5, Start: 63 * 512, Size: 6000 * 512, Type: "4.2BSD", Name: "a"},
			{Number: 6, Start: 6063 * 512, Size: 1000 * 512, Type: "swap", Name: "b"},
			{Number: 7, Start: 7063 * 512, Size: 500 * 512, Type: "MSDOS", Name: "e"},
		}
		if !reflect.DeepEqual(parts, want) {
			t.Errorf("%v: partitions\n%+v\nwant\n%+v", bo, parts, want)
		}
		w, err := SelectPartition(dev, "5", nil)
		if err != nil || w.Size() != 6000*512 {
			t.Errorf("select 5: %v", err)
		}
	}
}

// TestDisklabelFreeBSDRelative: a FreeBSD label whose c partition starts
// at 0 counts offsets from the slice.
func TestDisklabelFreeBSDRelative(t *testing.T) {
	img := make([]byte, 10000*512)
	putRecord(sector(img, 0), 0, 0x80, 0xA5, 100, 9000)
	putDisklabel(sector(img, 101), binary.LittleEndian, []labelPart{
		{4000, 16, fsTypeBSDFFS}, {0, 0, 0}, {9000, 0, fsTypeUnused},
	})
	parts, err := Partitions(NewMemDeviceFrom(img, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[1].Start != 116*512 || parts[1].Name != "a" {
		t.Errorf("partitions %+v", parts)
	}
}

// TestDisklabelCorrupt: a bad checksum or partition count is a corrupt
// table; a slice without a label is just a slice.
func TestDisklabelCorrupt(t *testing.T) {
	img := craftNetBSD(binary.LittleEndian)
	sector(img, 64)[labelHeaderLen] ^= 1
	if _, err := Partitions(NewMemDeviceFrom(img, true)); !errors.Is(err, ErrBadPartitionTable) {
		t.Errorf("bad checksum: %v", err)
	}
	img = craftNetBSD(binary.LittleEndian)
	binary.LittleEndian.PutUint16(sector(img, 64)[138:], 200)
	if _, err := Partitions(NewMemDeviceFrom(img, true)); !errors.Is(err, ErrBadPartitionTable) {
		t.Errorf("bad count: %v", err)
	}
	img = craftNetBSD(binary.LittleEndian)
	clear(sector(img, 64))
	parts, err := Partitions(NewMemDeviceFrom(img, true))
	if err != nil || len(parts) != 1 {
		t.Errorf("no label: %+v %v", parts, err)
	}
}
