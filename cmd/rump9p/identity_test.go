package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

func TestHostUsers(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\n# comment\n\nalice:x:1000:100::/home/alice:/bin/sh\nbroken\nbob:x:1001:1001::/:/bin/false\nalias:x:1000:5::/:/bin/sh\nbad:x:nan:1::/:/bin/sh\n"), 0o644)
	os.WriteFile(group, []byte("root:x:0:\nusers:x:100:bob\nwheel:x:10:alice,bob\nproj:x:4242:alice\ndup:x:100:alice\nbad:x:q:alice\n"), 0o644)
	got, err := hostUsers(passwd, group)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]vnodeops.Cred{
		0:    {UID: 0, GID: 0},
		1000: {UID: 1000, GID: 100, Groups: []uint32{10, 4242}},
		1001: {UID: 1001, GID: 1001, Groups: []uint32{100, 10}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := hostUsers(filepath.Join(dir, "missing"), group); err == nil {
		t.Error("no error for a missing passwd file")
	}
}
