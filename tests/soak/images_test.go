package soak

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A file system under test: how to make its image and check it offline.
type fsKind struct {
	name  string // subtest name
	typ   string // mounts[].type
	tools []string
	make  func(t *testing.T, img string, seed map[string][]byte)

	check []string // read-only checker (image path appended): exit 0 when clean
	// After a crash: preen (what a boot runs) must repair the image with
	// an exit status of at most preenMax, saying dirty of the image that
	// its server never unmounted; repair is the fallback when it cannot.
	preen    []string
	preenMax int
	dirty    string
	repair   []string
}

// fsck runs k's read-only checker and returns the problems it reports
// (without its headers and summary) and its exit status.
func (k fsKind) fsck(img string) (problems string, code int) {
	out, code := run(k.check[0], append(k.check[1:], img)...)
	var lines []string
	for l := range strings.Lines(strings.TrimSpace(out)) {
		l = strings.TrimSpace(l)
		boiler := l == "" || strings.HasPrefix(l, "Pass ") || strings.HasPrefix(l, img+":") ||
			strings.HasPrefix(l, "e2fsck ") || strings.HasPrefix(l, "fsck.fat ") || l == "Leaving filesystem unchanged."
		if !boiler {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " / "), code
}

// mustBeClean fails the test unless k's checker finds img clean.
func (k fsKind) mustBeClean(t *testing.T, img, when string) {
	t.Helper()
	if problems, code := k.fsck(img); code != 0 {
		t.Fatalf("%s %s: exit %d: %s", strings.Join(k.check, " "), when, code, problems)
	}
}

// imageSize is the size of the ext2 and FAT32 images: room for the soak's
// files (32 clients × at most 24 files × at most 128 KiB) and FAT32's
// minimum cluster count.
const imageSize = 256 << 20

var (
	tmpfsKind = fsKind{name: "tmpfs", typ: "tmpfs"}
	ext2Kind  = fsKind{
		name:  "ext2",
		typ:   "ext2fs",
		tools: []string{"mke2fs", "e2fsck"},
		make: func(t *testing.T, img string, seed map[string][]byte) {
			dir := filepath.Join(t.TempDir(), "seed")
			writeSeed(t, dir, seed)
			mustRun(t, "mke2fs", "-q", "-F", "-t", "ext2", "-d", dir, img, strconv.Itoa(imageSize>>10))
		},
		check: []string{"e2fsck", "-fn"},
		// Without -f: the server must have marked the image not clean, or
		// a boot would skip the check. Exit 1 and 2 mean errors corrected.
		preen:    []string{"e2fsck", "-p"},
		preenMax: 3,
		dirty:    "was not cleanly unmounted",
		repair:   []string{"e2fsck", "-fy"},
	}
	fat32Kind = fsKind{
		name:  "fat32",
		typ:   "msdosfs",
		tools: []string{"mkfs.fat", "fsck.fat", "mcopy"},
		make: func(t *testing.T, img string, seed map[string][]byte) {
			f, err := os.Create(img)
			if err == nil {
				err = f.Truncate(imageSize)
				f.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			mustRun(t, "mkfs.fat", "-F", "32", img)
			if len(seed) == 0 {
				return
			}
			dir := filepath.Join(t.TempDir(), "seed")
			writeSeed(t, dir, seed)
			ents, _ := os.ReadDir(dir)
			args := []string{"-i", img, "-s"}
			for _, e := range ents {
				args = append(args, filepath.Join(dir, e.Name()))
			}
			mustRun(t, "mcopy", append(args, "::/")...)
		},
		check: []string{"fsck.fat", "-n"},
		// fsck.fat -a: exit 1 means errors corrected.
		preen:    []string{"fsck.fat", "-a"},
		preenMax: 1,
		dirty:    "Dirty bit is set",
		repair:   []string{"fsck.fat", "-a"},
	}
)

// run runs a checker and returns its output and exit status.
func run(name string, args ...string) (string, int) {
	out, err := exec.Command(name, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return fmt.Sprintf("%s: %v", name, err), 255
	}
	return string(out), 0
}

// lastLine is the last non-empty line of a checker's output: its summary.
func lastLine(out string) string {
	out = strings.TrimSpace(out)
	return strings.TrimSpace(out[strings.LastIndexByte(out, '\n')+1:])
}

// writeSeed writes files (paths with '/') below dir.
func writeSeed(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// seedFiles is what the image tools put in the images before the server
// sees them (and what the soak writes into tmpfs itself).
func seedFiles() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	return map[string][]byte{
		"seed/readme.txt":        []byte("made by the image tool at test time\n"),
		"seed/big.bin":           big,
		"seed/nested/deeper.txt": []byte(strings.Repeat("deeper ", 1000)),
	}
}
