package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseGuestMount(t *testing.T) {
	cfg, err := parseGuestMount([]string{"--virtio-port", "rump9p", "-o", "aname=tmp,cache=loose", "/mnt", "-o", "ro", "--timeout", "5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := &guestMountConfig{port: "rump9p", options: []string{"aname=tmp", "cache=loose", "ro"}, timeout: 5 * time.Second, mountpoint: "/mnt"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	cfg, err = parseGuestMount([]string{"--tcp=10.0.2.2:5640", "/mnt"}, io.Discard)
	if err != nil || cfg.tcp != "10.0.2.2:5640" || cfg.timeout != time.Minute {
		t.Errorf("tcp: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"/mnt"},
		{"--tcp", "h:1", "--virtio-port", "p", "/mnt"},
		{"--tcp", "h:1"},
		{"--tcp", "h:1", "/a", "/b"},
		{"--tcp", "h:1", "--timeout", "-1s", "/mnt"},
		{"--bogus", "/mnt"},
	} {
		if _, err := parseGuestMount(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMountData(t *testing.T) {
	defaults := []string{"trans=fd", "rfdno=7", "wfdno=7", "version=9p2000.L", "msize=1048576"}
	reserved := map[string]string{"trans": "mine", "rfdno": "mine", "wfdno": "mine", "port": "no"}
	data, flags, err := mountData(defaults, []string{"aname=ext2", "msize=65536", "ro", "cache=loose", "noatime"}, reserved)
	if err != nil {
		t.Fatal(err)
	}
	if want := "trans=fd,rfdno=7,wfdno=7,version=9p2000.L,aname=ext2,msize=65536,cache=loose"; data != want {
		t.Errorf("data %q, want %q", data, want)
	}
	if !reflect.DeepEqual(flags, []string{"ro", "noatime"}) {
		t.Errorf("flags %q", flags)
	}
	data, flags, err = mountData(defaults, nil, reserved)
	if err != nil || data != strings.Join(defaults, ",") || flags != nil {
		t.Errorf("no user options: %q %q %v", data, flags, err)
	}
	for _, o := range []string{"trans=tcp", "rfdno=0", "wfdno=1", "port=1"} {
		if _, _, err := mountData(defaults, []string{o}, reserved); err == nil {
			t.Errorf("-o %s accepted", o)
		}
	}
}

// fakePorts builds a sysfs directory of virtio ports and a /dev.
func fakePorts(t *testing.T, ports map[string]string) (sys, dev string) {
	t.Helper()
	root := t.TempDir()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for _, d := range []string{sys, dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for vport, name := range ports {
		if err := os.MkdirAll(filepath.Join(sys, vport), 0o755); err != nil {
			t.Fatal(err)
		}
		if name != "" {
			if err := os.WriteFile(filepath.Join(sys, vport, "name"), []byte(name+"\n"), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dev, vport), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return sys, dev
}

func TestFindVirtioPort(t *testing.T) {
	sys, dev := fakePorts(t, map[string]string{"vport0p0": "", "vport0p1": "org.qemu.guest_agent.0", "vport0p2": "rump9p"})
	got, err := findVirtioPort(sys, dev, "rump9p")
	if err != nil || got != filepath.Join(dev, "vport0p2") {
		t.Errorf("rump9p: %q, %v", got, err)
	}
	_, err = findVirtioPort(sys, dev, "other")
	if err == nil || !strings.Contains(err.Error(), "org.qemu.guest_agent.0 (vport0p1), rump9p (vport0p2)") {
		t.Errorf("missing name: %v", err)
	}
	// udev's symlink directory wins.
	if err := os.MkdirAll(filepath.Join(dev, "virtio-ports"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../vport0p1", filepath.Join(dev, "virtio-ports", "agent")); err != nil {
		t.Fatal(err)
	}
	if got, err := findVirtioPort(sys, dev, "agent"); err != nil || got != filepath.Join(dev, "virtio-ports", "agent") {
		t.Errorf("udev name: %q, %v", got, err)
	}
	// A path is taken as it is.
	p := filepath.Join(dev, "vport0p1")
	if got, err := findVirtioPort(sys, dev, p); err != nil || got != p {
		t.Errorf("path: %q, %v", got, err)
	}
	if _, err := findVirtioPort(sys, dev, filepath.Join(dev, "nope")); err == nil {
		t.Error("missing path: no error")
	}
	// Named in sysfs, but no device node.
	if err := os.Remove(filepath.Join(dev, "vport0p2")); err != nil {
		t.Fatal(err)
	}
	if _, err := findVirtioPort(sys, dev, "rump9p"); err == nil || !strings.Contains(err.Error(), "devtmpfs") {
		t.Errorf("no node: %v", err)
	}
	// No ports at all.
	empty, _ := fakePorts(t, nil)
	if _, err := findVirtioPort(filepath.Join(empty, "absent"), dev, "rump9p"); err == nil || !strings.Contains(err.Error(), "virtserialport") {
		t.Errorf("no ports: %v", err)
	}
}
