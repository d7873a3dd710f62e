package p9srv

import (
	"testing"

	"github.com/hugelgupf/p9/linux"
)

// remover is the library client's Tremove, which p9.File does not list.
type remover interface{ Remove() error }

// TestTremove: Tremove removes files and empty directories, as remove(5)
// says (diod-style clients without Tunlinkat use it for rmdir), and a
// non-empty directory stays with ENOTEMPTY.
func TestTremove(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, true)
	cl, _ := dial(t, addr, 0, 1<<16)
	d := attach(t, cl, "tmp1")
	createFile(t, d, "f", []byte("x")).Close()
	for _, name := range []string{"empty", "full"} {
		if _, err := d.Mkdir(name, 0o755, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	full := walk(t, d, "full")
	createFile(t, full, "inside", nil).Close()
	full.Close()

	for _, name := range []string{"f", "empty"} {
		if err := walk(t, d, name).(remover).Remove(); err != nil {
			t.Errorf("Tremove %s: %v", name, err)
		}
		if _, _, err := d.Walk([]string{name}); err != linux.ENOENT {
			t.Errorf("%s after Tremove: %v, want ENOENT", name, err)
		}
	}
	wantErr(t, "Tremove of a non-empty directory", walk(t, d, "full").(remover).Remove(), linux.ENOTEMPTY)
	if _, _, err := d.Walk([]string{"full", "inside"}); err != nil {
		t.Errorf("full/inside after the failed Tremove: %v", err)
	}
	// Tunlinkat keeps its own rules: a file with AT_REMOVEDIR is ENOTDIR.
	createFile(t, d, "g", nil).Close()
	wantErr(t, "Tunlinkat(AT_REMOVEDIR) of a file", d.UnlinkAt("g", atRemoveDir), linux.ENOTDIR)
}
