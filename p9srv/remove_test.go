package p9srv

import (
	"testing"

	"github.com/hugelgupf/p9/linux"
)

// remover is the library client's Tremove, which p9.File does not list.
type remover interface{ Remove() error }

// TestTremove: Tremove removes a file and clunks its fid. A directory is
// not removed by Tremove (the library sends it as Tunlinkat without
// AT_REMOVEDIR, whose answer is EISDIR); Tunlinkat with AT_REMOVEDIR
// removes it, and refuses a file with ENOTDIR.
func TestTremove(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, true)
	cl, _ := dial(t, addr, 0, 1<<16)
	d := attach(t, cl, "tmp1")
	createFile(t, d, "f", []byte("x")).Close()
	if _, err := d.Mkdir("empty", 0o755, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := walk(t, d, "f").(remover).Remove(); err != nil {
		t.Errorf("Tremove f: %v", err)
	}
	if _, _, err := d.Walk([]string{"f"}); err != linux.ENOENT {
		t.Errorf("f after Tremove: %v, want ENOENT", err)
	}
	wantErr(t, "Tremove of a directory", walk(t, d, "empty").(remover).Remove(), linux.EISDIR)
	if err := d.UnlinkAt("empty", atRemoveDir); err != nil {
		t.Errorf("Tunlinkat(AT_REMOVEDIR) of empty: %v", err)
	}
	createFile(t, d, "g", nil).Close()
	wantErr(t, "Tunlinkat(AT_REMOVEDIR) of a file", d.UnlinkAt("g", atRemoveDir), linux.ENOTDIR)
}
