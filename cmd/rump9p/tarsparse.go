package main

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// addSparse archives the regular file open on in, described by hdr, in
// GNU's pax sparse format 1.0: a pax header of our own (archive/tar
// writes no GNU.sparse records) naming the file and its real size, then
// a ustar member whose data is the map of the data regions followed by
// those regions. Runs of zeros aligned on 4 KiB are the holes.
func (a *archiver) addSparse(hdr *tar.Header, in io.ReaderAt) error {
	type region struct{ off, n int64 }
	var regions []region
	buf := make([]byte, 4096)
	for off := int64(0); off < hdr.Size; off += int64(len(buf)) {
		n, err := in.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return err
		}
		if allZero(buf[:n]) {
			continue
		}
		if k := len(regions) - 1; k >= 0 && regions[k].off+regions[k].n == off {
			regions[k].n += int64(n)
		} else {
			regions = append(regions, region{off, int64(n)})
		}
	}
	// A file ending in a hole ends its map with an empty region there.
	if k := len(regions) - 1; k < 0 || regions[k].off+regions[k].n < hdr.Size {
		regions = append(regions, region{hdr.Size, 0})
	}
	var m strings.Builder
	fmt.Fprintf(&m, "%d\n", len(regions))
	var data int64
	for _, r := range regions {
		fmt.Fprintf(&m, "%d\n%d\n", r.off, r.n)
		data += r.n
	}
	sparseMap := []byte(m.String())
	sparseMap = append(sparseMap, make([]byte, pad512(int64(len(sparseMap))))...)

	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", hdr.Name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(hdr.Size, 10)) +
		paxRecord("mtime", fmt.Sprintf("%d.%09d", hdr.ModTime.Unix(), hdr.ModTime.Nanosecond())) +
		paxRecord("atime", fmt.Sprintf("%d.%09d", hdr.AccessTime.Unix(), hdr.AccessTime.Nanosecond()))
	for k, v := range hdr.PAXRecords {
		records += paxRecord(k, v)
	}
	if err := a.tw.Flush(); err != nil {
		return err
	}
	if _, err := a.out.Write(paxHeader("PaxHeaders/"+path.Base(hdr.Name), records)); err != nil {
		return err
	}
	stub := "GNUSparseFile.0/" + path.Base(hdr.Name)
	if len(stub) > 100 {
		stub = stub[:100]
	}
	member := &tar.Header{
		Typeflag: tar.TypeReg, Name: stub, Size: int64(len(sparseMap)) + data,
		Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime.Truncate(1e9),
		Format: tar.FormatUSTAR,
	}
	if err := a.tw.WriteHeader(member); err != nil {
		return err
	}
	if _, err := a.tw.Write(sparseMap); err != nil {
		return err
	}
	for _, r := range regions {
		if _, err := io.Copy(a.tw, io.TeeReader(io.NewSectionReader(in, r.off, r.n), a.prog)); err != nil {
			return err
		}
	}
	return nil
}

// pad512 is how many bytes fill n up to a 512-byte block.
func pad512(n int64) int64 { return -n & 511 }

// paxRecord encodes one pax extended header record: "LEN KEY=VALUE\n",
// LEN counting the whole record, its own digits included.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for n != len(body)+len(strconv.Itoa(n)) {
		n = len(body) + len(strconv.Itoa(n))
	}
	return strconv.Itoa(n) + body
}

// paxHeader returns a ustar header block of type 'x' for records, the
// records, and the padding after them.
func paxHeader(name, records string) []byte {
	var h [512]byte
	if len(name) > 100 {
		name = name[:100]
	}
	copy(h[0:], name)
	octal(h[100:108], 0o644) // mode
	octal(h[108:116], 0)     // uid
	octal(h[116:124], 0)     // gid
	octal(h[124:136], int64(len(records)))
	octal(h[136:148], 0) // mtime
	h[156] = tar.TypeXHeader
	copy(h[257:], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(h[:], records...)
	return append(out, make([]byte, pad512(int64(len(records))))...)
}

// octal writes v into the header field b as zero-padded octal digits
// and a NUL.
func octal(b []byte, v int64) {
	copy(b, fmt.Sprintf("%0*o\x00", len(b)-1, v))
}
