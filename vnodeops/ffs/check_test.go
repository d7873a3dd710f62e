package ffs

import (
	"os"
	"strings"
	"testing"
)

// mustCheck fails t with Check's findings on the image img.
func mustCheck(t testing.TB, img string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	found, err := Check(f, fi.Size())
	if err != nil {
		t.Fatalf("%s: check: %v", img, err)
	}
	if len(found) > 0 {
		t.Fatalf("%s: %d problem(s):\n  %s", img, len(found), strings.Join(found, "\n  "))
	}
}

// TestCheckFindings: Check finds each kind of damage hand-made in a
// clean image, and nothing in the clean image itself.
func TestCheckFindings(t *testing.T) {
	for _, v := range []variant{variants[0], variants[7]} {
		data, sb, inos := corruptBase(t, v)
		cg := func(d []byte) *cgView {
			a := sb.cgtod(0) << sb.fshift
			cv, err := sb.decodeCg(d[a:a+sb.bsize], 0)
			if err != nil {
				t.Fatal(err)
			}
			return cv
		}
		cases := []struct {
			name, want string
			patch      func(d []byte)
		}{
			{"clean", "", func([]byte) {}},
			{"unclean", "not marked clean", func(d []byte) { d[sb.loc+sbClean] = 0 }},
			{"free map", "marked free true", func(d []byte) {
				a := inodeAt(d, sb, inos["dir/file"]).addr(0)
				cg(d).setFragFree(a-sb.cgBase(0), true)
			}},
			{"link count", "link count", func(d []byte) {
				di := inodeAt(d, sb, inos["small"])
				di.setNlink(di.nlink() + 1)
			}},
			{"blocks", "di_blocks", func(d []byte) {
				di := inodeAt(d, sb, inos["dir/file"])
				di.setBlocks(di.blocks() + 4)
			}},
			{"shared block", "referenced twice", func(d []byte) {
				inodeAt(d, sb, inos["small"]).setAddr(0, inodeAt(d, sb, inos["dir/file"]).addr(0))
			}},
			{"cg summary", "cg_cs", func(d []byte) {
				v := cg(d)
				cs := v.cs()
				cs.nifree++
				v.setCs(cs)
			}},
			{"frsum", "frsum", func(d []byte) { cg(d).addFrsum(1, 3) }},
			{"dotdot", "but directory 2 holds it", func(d []byte) {
				a := inodeAt(d, sb, inos["dir"]).addr(0) << sb.fshift
				sb.bo.PutUint32(d[a+12:], uint32(inos["dir"]))
			}},
			{"unreachable", "not reachable", func(d []byte) {
				a := inodeAt(d, sb, rootIno).addr(0) << sb.fshift
				for o := int64(0); o < dirBlkSize; o += int64(sb.bo.Uint16(d[a+o+4:])) {
					if e, _ := decodeDirent(sb.bo, false, d[a:a+dirBlkSize], int(o)); string(e.name) == "dir" {
						sb.bo.PutUint32(d[a+o:], 0)
					}
				}
			}},
			{"entry to a free inode", "free inode", func(d []byte) {
				inodeAt(d, sb, inos["link"]).setMode(0)
			}},
		}
		for _, c := range cases {
			t.Run(v.name+"/"+c.name, func(t *testing.T) {
				d := append([]byte(nil), data...)
				c.patch(d)
				found, err := Check(bytesReader(d), int64(len(d)))
				if err != nil {
					t.Fatal(err)
				}
				all := strings.Join(found, "\n")
				if c.want == "" && len(found) > 0 || c.want != "" && !strings.Contains(all, c.want) {
					t.Errorf("findings %q, want one containing %q", found, c.want)
				}
			})
		}
	}
}
