package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runCLI runs one command line in-process.
func runCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout, or in stderr when code != 0
	}{
		{[]string{"version"}, 0, version},
		{[]string{"--version"}, 0, version},
		{[]string{"-v"}, 0, version},
		{[]string{"help", "serve"}, 0, "--listen"},
		{[]string{"serve", "--help"}, 0, "--log-level"},
		{[]string{"completion", "bash"}, 0, "bash completion"},
		{nil, 2, "Usage:"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"serve", "extra"}, 2, "unexpected arguments"},
		{[]string{"serve", "--bogus"}, 2, "unknown flag"},
		{[]string{"config"}, 2, "usage"},
		{[]string{"config", "check"}, 2, "usage"},
		{[]string{"config", "check", "/nonexistent.yaml"}, 1, "nonexistent.yaml"},
		{[]string{"guest-mount", "/mnt"}, 2, "--virtio-port"},
	} {
		stdout, stderr, code := runCLI(tc.args...)
		got := stdout
		if tc.code != 0 {
			got = stderr
		}
		if code != tc.code || !strings.Contains(got, tc.out) {
			t.Errorf("rump9p %q: status %d, stdout %.300q, stderr %.300q; want status %d with %q", tc.args, code, stdout, stderr, tc.code, tc.out)
		}
	}
	dir := filepath.Join(t.TempDir(), "man")
	if _, stderr, code := runCLI("man", dir); code != 0 {
		t.Fatalf("man: %d %s", code, stderr)
	}
	for _, page := range []string{"rump9p.1", "rump9p-serve.1", "rump9p-mount.1", "rump9p-config-check.1"} {
		if b, err := os.ReadFile(filepath.Join(dir, page)); err != nil || !bytes.Contains(b, []byte(".TH")) {
			t.Errorf("man page %s: %v", page, err)
		}
	}
	// The flags of the commands from before cobra still take one dash.
	root := newRootCmd(nil, io.Discard, io.Discard)
	if got := legacyFlags(root, []string{"serve", "-listen", "stdio", "-c", "f", "-msize=1M", "--", "-cache"}); !slices.Equal(got, []string{"serve", "--listen", "stdio", "-c", "f", "--msize=1M", "--", "-cache"}) {
		t.Errorf("legacyFlags: %q", got)
	}
	if got := legacyFlags(root, []string{"ls", "-la"}); !slices.Equal(got, []string{"ls", "-la"}) {
		t.Errorf("legacyFlags of a new command: %q", got)
	}
}
