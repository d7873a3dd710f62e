package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/pflag"
)

// The config tests link no real driver, so they register fakes whose
// probes look for an 8-byte magic at offset 1024.
const (
	fakeFFSMagic  = "FAKE-FFS"
	fakeExt2Magic = "FAKE-EXT"
)

func fakeProbe(magic string) func(io.ReaderAt, int64) bool {
	return func(r io.ReaderAt, size int64) bool {
		if size < 1024+int64(len(magic)) {
			return false
		}
		buf := make([]byte, len(magic))
		if _, err := r.ReadAt(buf, 1024); err != nil {
			return false
		}
		return string(buf) == magic
	}
}

var fakesRegistered = func() bool {
	if _, ok := vnodeops.Lookup("ffs"); ok {
		return false
	}
	if _, ok := vnodeops.Lookup("ext2fs"); ok {
		return false
	}
	vnodeops.Register(vnodeops.Driver{Name: "ffs", NeedsDevice: true, Probe: fakeProbe(fakeFFSMagic)})
	vnodeops.Register(vnodeops.Driver{Name: "ext2fs", NeedsDevice: true, Probe: fakeProbe(fakeExt2Magic)})
	return true
}()

func needFakes(t *testing.T) {
	t.Helper()
	if !fakesRegistered {
		t.Skip("real ffs/ext2fs drivers are linked; fake probes not registered")
	}
}

// writeImage writes an image of 4 KiB carrying magic at offset 1024.
func writeImage(t *testing.T, dir, name, magic string) string {
	t.Helper()
	b := make([]byte, 4096)
	copy(b[1024:], magic)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadYAML loads text as a YAML file in dir (a fresh temp dir if "").
func loadYAML(t *testing.T, dir, text string) (*Config, error) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return Load(LoadOptions{File: writeFile(t, dir, "rump9p.yaml", text)})
}

// errorsOf returns the messages of err, which must be an Errors.
func errorsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("Load succeeded; want errors")
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %q (%T) is not an Errors", err, err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func TestDefaultsWithoutFile(t *testing.T) {
	c, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:   []Listener{{Network: "tcp", Address: "127.0.0.1:5640"}},
		Msize:    1 << 20,
		Cache:    64 << 20,
		Log:      Log{Level: "info", Format: "text"},
		Mounts:   []Mount{{Name: "tmp", Type: "tmpfs"}},
		Security: Defaults().Security,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n%v\nwant\n%v", c, want)
	}
}

func TestFileWithoutMountsIsError(t *testing.T) {
	_, err := loadYAML(t, "", "msize: 64k\n")
	msgs := errorsOf(t, err)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "mounts: no mounts configured") {
		t.Errorf("got %q", msgs)
	}
}

// The same configuration in each of the three formats gives one Config.
func TestFormats(t *testing.T) {
	needFakes(t)
	dir := t.TempDir()
	img := writeImage(t, dir, "disk.img", fakeFFSMagic)
	yamlText := `
listen: ["tcp:127.0.0.1:7000", "unix:/tmp/r.sock", stdio]
msize: 512KiB
cache: 1048576
log: {level: debug, format: json}
mounts:
  - name: root
    type: ffs
    image: disk.img
    readonly: true
    options: {noatime: true, uid: 1000, label: x}
  - name: scratch
    type: tmpfs
  - name: part
    type: ext2fs
    image: disk.img
    partition: 2
security:
  squash: {uid: 65534, gid: 65533}
  readonly: true
  max_connections: 8
  max_fids_per_connection: 100
`
	tomlText := `
listen = ["tcp:127.0.0.1:7000", "unix:/tmp/r.sock", "stdio"]
msize = "512KiB"
cache = 1048576

[log]
level = "debug"
format = "json"

[[mounts]]
name = "root"
type = "ffs"
image = "disk.img"
readonly = true
[mounts.options]
noatime = true
uid = 1000
label = "x"

[[mounts]]
name = "scratch"
type = "tmpfs"

[[mounts]]
name = "part"
type = "ext2fs"
image = "disk.img"
partition = 2

[security]
readonly = true
max_connections = 8
max_fids_per_connection = 100
[security.squash]
uid = 65534
gid = 65533
`
	jsonText := `{
  "listen": ["tcp:127.0.0.1:7000", "unix:/tmp/r.sock", "stdio"],
  "msize": "512KiB",
  "cache": 1048576,
  "log": {"level": "debug", "format": "json"},
  "mounts": [
    {"name": "root", "type": "ffs", "image": "disk.img", "readonly": true,
     "options": {"noatime": true, "uid": 1000, "label": "x"}},
    {"name": "scratch", "type": "tmpfs"},
    {"name": "part", "type": "ext2fs", "image": "disk.img", "partition": 2}
  ],
  "security": {"squash": {"uid": 65534, "gid": 65533}, "readonly": true,
    "max_connections": 8, "max_fids_per_connection": 100}
}`
	want := &Config{
		Listen: []Listener{
			{Network: "tcp", Address: "127.0.0.1:7000"},
			{Network: "unix", Address: "/tmp/r.sock"},
			{Network: "stdio"},
		},
		Msize: 512 << 10,
		Cache: 1 << 20,
		Log:   Log{Level: "debug", Format: "json"},
		Mounts: []Mount{
			{Name: "root", Type: "ffs", Image: img, ReadOnly: true,
				Options: map[string]string{"noatime": "true", "uid": "1000", "label": "x"}},
			{Name: "scratch", Type: "tmpfs"},
			{Name: "part", Type: "ext2fs", Image: img, Partition: "2"},
		},
		Security: func() Security {
			s := Defaults().Security
			s.Squash, s.ReadOnly = &Squash{UID: 65534, GID: 65533}, true
			s.MaxConnections, s.MaxFidsPerConnection = 8, 100
			return s
		}(),
	}
	for name, text := range map[string]string{"c.yaml": yamlText, "c.yml": yamlText, "c.toml": tomlText, "c.json": jsonText, "C.JSON": jsonText} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(LoadOptions{File: writeFile(t, dir, name, text)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got\n%v\nwant\n%v", c, want)
			}
		})
	}
}

func TestUnknownExtension(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"rump9p.ini", "rump9p"} {
		_, err := Load(LoadOptions{File: writeFile(t, dir, name, "msize = 1\n")})
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "extension") {
			t.Errorf("%s: got %v, want an error naming the file and its extension", name, err)
		}
		var es Errors
		if errors.As(err, &es) {
			t.Errorf("%s: a file-level error should not be an Errors", name)
		}
	}
	_, err := Load(LoadOptions{File: writeFile(t, dir, "x.conf", "")})
	if err == nil || !strings.Contains(err.Error(), `".conf"`) {
		t.Errorf("got %v, want an error naming .conf", err)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(LoadOptions{File: filepath.Join(dir, "missing.yaml")}); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: got %v", err)
	}
	bad := writeFile(t, dir, "bad.yaml", "listen: [unclosed\n")
	if _, err := Load(LoadOptions{File: bad}); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("parse error: got %v", err)
	}
	list := writeFile(t, dir, "list.json", `[1, 2]`)
	if _, err := Load(LoadOptions{File: list}); err == nil {
		t.Error("a JSON list as the document loaded")
	}
	deep := writeFile(t, dir, "deep.yaml", strings.Repeat("{a: ", 5000)+"1"+strings.Repeat("}", 5000)+"\n")
	if _, err := Load(LoadOptions{File: deep}); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: got %v", err)
	}
	big := writeFile(t, dir, "big.yaml", "#"+strings.Repeat("x", MaxFileSize)+"\n")
	if _, err := Load(LoadOptions{File: big}); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized file: got %v", err)
	}
}

// validationCase is a YAML file and every error it must give, in order;
// each want entry must be a prefix of the corresponding message.
type validationCase struct {
	name string
	yaml string
	want []string
}

func runValidation(t *testing.T, dir string, cases []validationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, dir, tc.yaml)
			got := errorsOf(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors %q, want %d %q", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("error %d = %q, want prefix %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

const tmpMount = "mounts: [{name: t, type: tmpfs}]\n"

func TestValidateUnknownKeys(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"top", tmpMount + "msiz: 1M\nfoo: 1\n", []string{
			`foo: unknown key (want one of listen, msize, cache, log, mounts, security)`,
			`msiz: unknown key (did you mean "msize"?)`,
		}},
		{"mount", "mounts: [{name: t, type: tmpfs}, {name: u, type: tmpfs, imgae: x}]\n", []string{
			`mounts[1].imgae: unknown key (did you mean "image"?)`,
		}},
		{"first mount", "mounts: [{name: t, type: tmpfs, imgae: x}]\n", []string{
			`mounts[0].imgae: unknown key`,
		}},
		{"nested", tmpMount + "log: {lvl: debug}\nsecurity: {squash: {uid: 1, gid: 2, grp: 3}, max_conns: 3}\n", []string{
			`log.lvl: unknown key`,
			`security.max_conns: unknown key`,
			`security.squash.grp: unknown key`,
		}},
		{"dotted", tmpMount + "log.level: debug\n", []string{
			`log.level: unknown key (a key may not contain "."`,
		}},
	})
}

func TestValidateTypes(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"unknown", "mounts: [{name: a, type: tmpfs}, {name: b, type: tmpfs}, {name: c, type: ext5, image: /nonexistent}]\n", []string{
			`mounts[2].type: unknown file system type "ext5" (want one of tmpfs, ffs, ext2fs, msdosfs, cd9660, auto)`,
			`mounts[2].image: "/nonexistent" does not exist`,
		}},
		{"missing", "mounts: [{name: a}]\n", []string{
			`mounts[0].type: missing (want one of tmpfs, ffs, ext2fs, msdosfs, cd9660, auto)`,
		}},
		{"not a string", "mounts: [{name: a, type: [ffs]}]\n", []string{
			`mounts[0].type: want a string, got a list`,
		}},
		{"mount not a map", "mounts: [{name: a, type: tmpfs}, ffs]\n", []string{
			`mounts[1]: want a map, got "ffs"`,
		}},
		{"mounts not a list", "mounts: {name: a}\n", []string{
			`mounts: want a list of mounts, got a map`,
		}},
	})
}

func TestValidateImages(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "ok.img", "")
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	runValidation(t, dir, []validationCase{
		{"missing file", "mounts: [{name: a, type: msdosfs, image: nothere.img}]\n", []string{
			`mounts[0].image: "` + filepath.Join(dir, "nothere.img") + `" does not exist`,
		}},
		{"no image", "mounts: [{name: a, type: cd9660}]\n", []string{
			`mounts[0].image: missing (type cd9660 needs an image file)`,
		}},
		{"directory", "mounts: [{name: a, type: cd9660, image: adir}]\n", []string{
			`mounts[0].image: "` + filepath.Join(dir, "adir") + `" is not a regular file or a block device (it is a directory)`,
		}},
		{"char device", "mounts: [{name: a, type: cd9660, image: /dev/null}]\n", []string{
			`mounts[0].image: "/dev/null" is not a regular file or a block device (it is a character device)`,
		}},
		{"tmpfs with image", "mounts: [{name: a, type: tmpfs, image: ok.img, partition: 1}]\n", []string{
			`mounts[0].image: tmpfs takes no image (got "` + filepath.Join(dir, "ok.img") + `")`,
			`mounts[0].partition: tmpfs takes no partition (got "1")`,
		}},
	})
	// A type whose driver is not registered is accepted: the kernel
	// reports it at mount time.
	if _, ok := vnodeops.Lookup("msdosfs"); ok {
		t.Skip("msdosfs driver linked")
	}
	c, err := loadYAML(t, dir, "mounts: [{name: a, type: msdosfs, image: ok.img}]\n")
	if err != nil {
		t.Fatalf("unregistered driver: %v", err)
	}
	if c.Mounts[0].Image != filepath.Join(dir, "ok.img") {
		t.Errorf("relative image resolved to %q, want it under the config's directory", c.Mounts[0].Image)
	}
}

func TestValidateMagic(t *testing.T) {
	needFakes(t)
	dir := t.TempDir()
	writeImage(t, dir, "ffs.img", fakeFFSMagic)
	writeImage(t, dir, "ext.img", fakeExt2Magic)
	writeImage(t, dir, "junk.img", "garbage!")
	ext := filepath.Join(dir, "ext.img")
	junk := filepath.Join(dir, "junk.img")
	runValidation(t, dir, []validationCase{
		{"mismatch", "mounts: [{name: a, type: ffs, image: ext.img}]\n", []string{
			`mounts[0].type: image "` + ext + `" does not hold a ffs file system (it looks like ext2fs)`,
		}},
		{"mismatch no hint", "mounts: [{name: a, type: ext2fs, image: junk.img}]\n", []string{
			`mounts[0].type: image "` + junk + `" does not hold a ext2fs file system`,
		}},
		{"auto nothing", "mounts: [{name: a, type: auto, image: junk.img}]\n", []string{
			`mounts[0].image: "` + junk + `": no known file system found`,
		}},
	})
	good := `
mounts:
  - {name: a, type: ffs, image: ffs.img}
  - {name: b, type: auto, image: ext.img}
  - {name: c, type: ffs, image: junk.img, partition: 1}   # magic check skipped
  - {name: d, type: auto, image: junk.img, partition: auto}
`
	if _, err := loadYAML(t, dir, good); err != nil {
		t.Errorf("matching images: %v", err)
	}
}

func TestValidateProbePanic(t *testing.T) {
	if _, ok := vnodeops.Lookup("cd9660"); ok {
		t.Skip("cd9660 driver linked")
	}
	vnodeops.Register(vnodeops.Driver{Name: "cd9660", Probe: func(io.ReaderAt, int64) bool { panic("boom") }})
	dir := t.TempDir()
	writeImage(t, dir, "x.img", "")
	_, err := loadYAML(t, dir, "mounts: [{name: a, type: cd9660, image: x.img}]\n")
	msgs := errorsOf(t, err)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "panicked") {
		t.Errorf("got %q", msgs)
	}
}

func TestValidateNames(t *testing.T) {
	long := strings.Repeat("n", 256)
	runValidation(t, "", []validationCase{
		{"duplicate", "mounts: [{name: a, type: tmpfs}, {name: b, type: tmpfs}, {name: a, type: tmpfs}]\n", []string{
			`mounts[2].name: duplicate name "a" (also mounts[0])`,
		}},
		{"bad", `mounts:
  - {type: tmpfs}
  - {name: "", type: tmpfs}
  - {name: ".", type: tmpfs}
  - {name: "..", type: tmpfs}
  - {name: "a/b", type: tmpfs}
  - {name: "a\0b", type: tmpfs}
  - {name: ` + long + `, type: tmpfs}
  - {name: 12, type: tmpfs}
`, []string{
			`mounts[0].name: missing or empty`,
			`mounts[1].name: missing or empty`,
			`mounts[2].name: "." is not a name`,
			`mounts[3].name: ".." is not a name`,
			`mounts[4].name: "a/b" contains "/"`,
			`mounts[5].name: "a\x00b" contains NUL`,
			`mounts[6].name: name of 256 bytes is longer than 255`,
			`mounts[7].name: want a string, got the number 12`,
		}},
	})
	name255 := strings.Repeat("n", 255)
	if _, err := loadYAML(t, "", "mounts: [{name: "+name255+", type: tmpfs}]\n"); err != nil {
		t.Errorf("255-byte name: %v", err)
	}
}

func TestValidateSizes(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"syntax", tmpMount + "msize: 12Q\ncache: 1.5M\n", []string{
			`msize: bad size "12Q" (unknown suffix "Q"`,
			`cache: bad size "1.5M" (want a whole number`,
		}},
		{"range", tmpMount + "msize: 4097k\ncache: 255k\n", []string{
			`msize: 4195328 (4097KiB) out of range (want 8KiB .. 4MiB)`,
			`cache: 261120 (255KiB) too small (want at least 256KiB)`,
		}},
		{"small", tmpMount + "msize: 8191\n", []string{
			`msize: 8191 out of range`,
		}},
		{"negative", tmpMount + "msize: -5\n", []string{
			`msize: bad size -5 (negative)`,
		}},
		{"overflow", tmpMount + "cache: 99999999999T\n", []string{
			`cache: bad size "99999999999T" (too large)`,
		}},
		{"float", tmpMount + "msize: 65536.5\n", []string{
			`msize: want a size`,
		}},
		{"bool", tmpMount + "msize: true\n", []string{
			`msize: want a size (an integer or a string such as "64KiB"), got the boolean true`,
		}},
	})
	for _, ok := range []string{"msize: 8KiB", "msize: 4MiB", "msize: 8192", "cache: 256k", "msize: 65536.0"} {
		if _, err := loadYAML(t, "", tmpMount+ok+"\n"); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestValidateListen(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"bad host:port", tmpMount + "listen: [\"tcp:127.0.0.1:1\", \"tcp:1.2.3.4\"]\n", []string{
			`listen[1]: "tcp:1.2.3.4": bad host:port (missing port in address)`,
		}},
		{"many", tmpMount + `listen:
  - "tcp::5640"
  - "udp:1.2.3.4:5"
  - "tcp:127.0.0.1:99999"
  - "tcp:bad_host!:1"
  - "unix:"
  - "unix:/` + strings.Repeat("s", 107) + `"
  - stdio
  - stdio
  - "tcp:[::1]:5640"
  - "tcp:[::1]:5640"
  - 7
`, []string{
			`listen[0]: "tcp::5640": host missing`,
			`listen[1]: bad listener "udp:1.2.3.4:5" (want tcp:HOST:PORT, unix:PATH or stdio)`,
			`listen[2]: "tcp:127.0.0.1:99999": bad port "99999"`,
			`listen[3]: "tcp:bad_host!:1": bad host "bad_host!"`,
			`listen[4]: "unix:": socket path missing`,
			`listen[5]: "unix:/sss`,
			`listen[7]: "stdio" duplicates listen[6]`,
			`listen[9]: "tcp:[::1]:5640" duplicates listen[8]`,
			`listen[10]: want a string, got the number 7`,
		}},
		{"empty", tmpMount + "listen: []\n", []string{
			`listen: empty (want at least one of tcp:HOST:PORT, unix:PATH, stdio)`,
		}},
	})
	c, err := loadYAML(t, "", tmpMount+`listen: ["tcp:0.0.0.0:564", "tcp:localhost:0", "tcp:[fe80::1%eth0]:1", "unix:@abstract"]`+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen[0] != (Listener{"tcp", "0.0.0.0:564"}) || c.Listen[3] != (Listener{"unix", "@abstract"}) {
		t.Errorf("listeners %v", c.Listen)
	}
}

func TestValidateLog(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"bad", tmpMount + "log: {level: loud, format: xml}\n", []string{
			`log.level: unknown level "loud" (want one of debug, info, warn, error)`,
			`log.format: unknown format "xml" (want text or json)`,
		}},
	})
	c, err := loadYAML(t, "", tmpMount+"log: {level: WARN, format: JSON}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "warn" || c.Log.Format != "json" || c.Log.SlogLevel().String() != "WARN" {
		t.Errorf("log %+v", c.Log)
	}
}

func TestValidatePartition(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"bad", `mounts:
  - {name: a, type: ffs, image: /nonexistent, partition: 0}
  - {name: b, type: ffs, image: /nonexistent, partition: x}
  - {name: c, type: ffs, image: /nonexistent, partition: -1}
  - {name: d, type: ffs, image: /nonexistent, partition: true}
  - {name: e, type: ffs, image: /nonexistent, partition: "01x"}
  - {name: f, type: ffs, image: /nonexistent, partition: 1.5}
`, []string{
			`mounts[0].partition: bad partition 0`,
			`mounts[0].image: "/nonexistent" does not exist`,
			`mounts[1].partition: bad partition "x" (want "", "auto" or a positive partition number)`,
			`mounts[1].image: "/nonexistent" does not exist`,
			`mounts[2].partition: bad partition -1`,
			`mounts[2].image: "/nonexistent" does not exist`,
			`mounts[3].partition: bad partition: got the boolean true`,
			`mounts[3].image: "/nonexistent" does not exist`,
			`mounts[4].partition: bad partition "01x"`,
			`mounts[4].image: "/nonexistent" does not exist`,
			`mounts[5].partition: bad partition 1.5`,
			`mounts[5].image: "/nonexistent" does not exist`,
		}},
	})
}

func TestValidateOptions(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"bad", "mounts: [{name: a, type: tmpfs, options: {size: [1], mode: {a: b}, \"\": x}}]\n", []string{
			`mounts[0].options.mode: want a string, number or bool, got a map`,
			`mounts[0].options.size: want a string, number or bool, got a list`,
			`mounts[0].options: empty option name`,
		}},
		{"not a map", "mounts: [{name: a, type: tmpfs, options: [a]}]\n", []string{
			`mounts[0].options: want a map, got a list`,
		}},
	})
	c, err := loadYAML(t, "", "mounts: [{name: a, type: tmpfs, options: {size: 64M, big: 1e3, n: 7, f: 0.5, on: true, e: , s: 'x'}}]\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"size": "64M", "big": "1000", "n": "7", "f": "0.5", "on": "true", "e": "", "s": "x"}
	if !reflect.DeepEqual(c.Mounts[0].Options, want) {
		t.Errorf("options %v, want %v", c.Mounts[0].Options, want)
	}
}

func TestValidateSecurity(t *testing.T) {
	runValidation(t, "", []validationCase{
		{"limits", tmpMount + "security: {max_connections: 0, max_fids_per_connection: -3, readonly: maybe}\n", []string{
			`security.max_connections: 0 out of range (want a positive integer in 1 .. 2147483647)`,
			`security.max_fids_per_connection: -3 out of range`,
			`security.readonly: want true or false, got "maybe"`,
		}},
		{"squash true", tmpMount + "security: {squash: true}\n", []string{
			`security.squash: want false or a map {uid, gid}, got true`,
		}},
		{"squash half", tmpMount + "security: {squash: {uid: 1000}}\n", []string{
			`security.squash.gid: missing (squash needs both uid and gid)`,
		}},
		{"squash range", tmpMount + "security: {squash: {uid: 4294967295, gid: -1}}\n", []string{
			`security.squash.gid: -1 out of range (want an id in 0 .. 4294967294)`,
			`security.squash.uid: 4294967295 out of range`,
		}},
		{"budgets", tmpMount + "security: {max_inflight_per_connection: 0, max_memory_per_connection: 1k, max_memory: lots}\n", []string{
			`security.max_inflight_per_connection: 0 out of range`,
			`security.max_memory`,
			`security.max_memory_per_connection: 1024 (1KiB) is below the minimum 64KiB`,
		}},
		{"identity", tmpMount + "security: {identity: ldap}\n", []string{
			`security.identity: unknown identity "ldap" (want client, host or map)`,
		}},
		{"map without users", tmpMount + "security: {identity: map}\n", []string{
			`security.users: missing or empty`,
		}},
		{"users without map", tmpMount + "security: {identity: host, users: {1000: {gid: 1}}}\n", []string{
			`security.users: given, but security.identity is "host"`,
		}},
		{"bad users", tmpMount + "security: {identity: map, users: {x: {gid: 1}, 1000: {groups: 5}, 1001: {gid: 1, groups: [-2], shell: sh}}}\n", []string{
			`security.users.1000.groups: want a list of gids`,
			`security.users.1000.gid: missing`,
			`security.users.1001.groups[0]: -2 out of range`,
			`security.users.1001.shell: unknown key`,
			`security.users.x: want an id, got "x"`,
		}},
	})
	c, err := loadYAML(t, "", tmpMount+"security: {identity: MAP, users: {1000: {gid: 100, groups: [4242]}}}\n")
	if err != nil || c.Security.Identity != "map" || !reflect.DeepEqual(c.Security.Users, map[uint32]User{1000: {GID: 100, Groups: []uint32{4242}}}) {
		t.Errorf("identity map: %v %+v", err, c.Security)
	}
	c, err = loadYAML(t, "", tmpMount+"security: {squash: false}\n")
	if err != nil || c.Security.Squash != nil {
		t.Errorf("squash false: %v %+v", err, c)
	}
	c, err = loadYAML(t, "", tmpMount+"security: {squash: {uid: 0, gid: 0}}\n")
	if err != nil || c.Security.Squash == nil || *c.Security.Squash != (Squash{}) {
		t.Errorf("squash root: %v %+v", err, c)
	}
}

// Every class of error in one file: all are reported together.
func TestAllErrorsReported(t *testing.T) {
	_, err := loadYAML(t, "", `
listen: ["tcp:nope"]
msize: 1
cache: lots
log: {level: chatty}
mounts:
  - {name: a, type: ext5}
  - {name: a, type: tmpfs, imgae: x}
security: {max_connections: 0}
`)
	msgs := errorsOf(t, err)
	for _, want := range []string{"listen[0]:", "msize:", "cache:", "log.level:", "mounts[0].type:", "mounts[1].imgae:", "mounts[1].name: duplicate", "security.max_connections:"} {
		found := false
		for _, m := range msgs {
			found = found || strings.HasPrefix(m, want)
		}
		if !found {
			t.Errorf("no error starting %q in %q", want, msgs)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Key == "" {
		t.Errorf("errors.As(*Error) failed on %v", err)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c.Listen = append(c.Listen, Listener{Network: "sctp", Address: "x"}, Listener{Network: "stdio", Address: "x"})
	c.Mounts = append(c.Mounts, Mount{Name: "tmp", Type: "tmpfs", Partition: "0"})
	c.Security.Squash = &Squash{UID: 1<<32 - 1, GID: 1}
	err := c.Validate()
	var es Errors
	if !errors.As(err, &es) || len(es) != 5 {
		t.Fatalf("got %v, want 5 errors", err)
	}
	for i, key := range []string{"listen[1]", "listen[2]", "mounts[1].name", "mounts[1].partition", "security.squash.uid"} {
		if es[i].Key != key {
			t.Errorf("error %d key %q, want %q (%v)", i, es[i].Key, key, es[i])
		}
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "c.yaml", `
listen: ["tcp:127.0.0.1:1000"]
msize: 64k
cache: 1M
log: {level: warn, format: json}
mounts: [{name: t, type: tmpfs}]
security: {readonly: false, max_connections: 5, max_fids_per_connection: 6, squash: {uid: 1, gid: 2}}
`)
	environ := []string{
		"HOME=/root",
		"RUMP9P_MSIZE=128k",
		"RUMP9P_LOG_LEVEL=debug",
		"RUMP9P_LISTEN=tcp:127.0.0.1:2000, unix:/run/x.sock",
		"RUMP9P_SECURITY_MAX_CONNECTIONS=7",
		"RUMP9P_SECURITY_SQUASH_GID=20",
		"RUMP9P_CACHE=",         // empty: ignored
		"RUMP9P_CONFIG=/etc/x",  // reserved: ignored
		"rump9p_msize=1",        // wrong case prefix: not ours
		"OTHER_RUMP9P_MSIZE=99", // not ours
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--msize", "256KiB", "--readonly", "--listen", "stdio"}); err != nil {
		t.Fatal(err)
	}

	// File alone.
	c, err := Load(LoadOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	if c.Msize != 64<<10 || c.Log.Level != "warn" || c.Security.MaxConnections != 5 {
		t.Errorf("file: %v", c)
	}

	// File < env.
	c, err = Load(LoadOptions{File: file, Env: environ})
	if err != nil {
		t.Fatal(err)
	}
	wantListen := []Listener{{"tcp", "127.0.0.1:2000"}, {"unix", "/run/x.sock"}}
	if c.Msize != 128<<10 || c.Log.Level != "debug" || c.Log.Format != "json" || c.Cache != 1<<20 ||
		c.Security.MaxConnections != 7 || c.Security.MaxFidsPerConnection != 6 ||
		*c.Security.Squash != (Squash{UID: 1, GID: 20}) || !reflect.DeepEqual(c.Listen, wantListen) {
		t.Errorf("file+env:\n%v", c)
	}

	// File < env < flags; flags not set do not override.
	c, err = Load(LoadOptions{File: file, Env: environ, Flags: fs})
	if err != nil {
		t.Fatal(err)
	}
	if c.Msize != 256<<10 || c.Log.Level != "debug" || !c.Security.ReadOnly ||
		!reflect.DeepEqual(c.Listen, []Listener{{Network: "stdio"}}) || c.Log.Format != "json" {
		t.Errorf("file+env+flags:\n%v", c)
	}

	// Env and flags without a file keep the default mounts.
	c, err = Load(LoadOptions{Env: []string{"RUMP9P_SECURITY_READONLY=true"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Security.ReadOnly || len(c.Mounts) != 1 || c.Mounts[0].Name != "tmp" {
		t.Errorf("env only: %v", c)
	}
}

func TestFlags(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	RegisterFlags(fs)
	err := fs.Parse([]string{"--listen", "tcp:127.0.0.1:1,unix:/a", "--listen=stdio", "--cache", "2M",
		"--log-level", "error", "--log-format", "json"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(LoadOptions{Flags: fs})
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{{"tcp", "127.0.0.1:1"}, {"unix", "/a"}, {Network: "stdio"}}
	if !reflect.DeepEqual(c.Listen, want) || c.Cache != 2<<20 || c.Log.Level != "error" || c.Log.Format != "json" || c.Security.ReadOnly {
		t.Errorf("flags: %v", c)
	}

	// A FlagSet without our flags, or unparsed, changes nothing.
	other := pflag.NewFlagSet("o", pflag.ContinueOnError)
	other.String("msize", "", "")
	_ = other.Parse([]string{"--msize", "1"})
	if _, err := Load(LoadOptions{Flags: other}); err == nil {
		t.Error("a foreign --msize flag of 1 byte was not validated") // it is read by name
	}
	fresh := pflag.NewFlagSet("f", pflag.ContinueOnError)
	RegisterFlags(fresh)
	c, err = Load(LoadOptions{Flags: fresh})
	if err != nil || !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("unparsed flags: %v %v", err, c)
	}

	// A bad flag value names the flag.
	bad := pflag.NewFlagSet("b", pflag.ContinueOnError)
	RegisterFlags(bad)
	_ = bad.Parse([]string{"--msize", "huge"})
	_, err = Load(LoadOptions{Flags: bad})
	if err == nil || !strings.Contains(err.Error(), `msize: bad size "huge"`) || !strings.Contains(err.Error(), "(set by --msize)") {
		t.Errorf("got %v", err)
	}
}

func TestEnv(t *testing.T) {
	_, err := Load(LoadOptions{Env: []string{
		"RUMP9P_MSIZ=1",
		"RUMP9P_ZZZ=1",
		"RUMP9P_MSIZE=tiny",
		"RUMP9P_SECURITY_MAX_FIDS_PER_CONNECTION=0",
		"RUMP9P_LISTEN=tcp:1.2.3.4:5,tcp:x",
	}})
	msgs := errorsOf(t, err)
	want := []string{
		`listen[1]: "tcp:x": bad host:port (missing port in address) (set by RUMP9P_LISTEN)`,
		`msize: bad size "tiny"`,
		`security.max_fids_per_connection: 0 out of range (want a positive integer in 1 .. 2147483647) (set by RUMP9P_SECURITY_MAX_FIDS_PER_CONNECTION)`,
		"RUMP9P_MSIZ: unknown environment variable (did you mean RUMP9P_MSIZE?)",
		// RUMP9P_ZZZ is no near miss: another tool's variable, ignored.
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %q, want %d errors", msgs, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(msgs[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, msgs[i], want[i])
		}
	}

	// Squash from the environment alone, and switched off.
	c, err := Load(LoadOptions{Env: []string{"RUMP9P_SECURITY_SQUASH_UID=10", "RUMP9P_SECURITY_SQUASH_GID=11"}})
	if err != nil || c.Security.Squash == nil || *c.Security.Squash != (Squash{10, 11}) {
		t.Errorf("squash via env: %v %v", err, c)
	}
	dir := t.TempDir()
	file := writeFile(t, dir, "c.toml", "[[mounts]]\nname = \"t\"\ntype = \"tmpfs\"\n[security.squash]\nuid = 1\ngid = 2\n")
	c, err = Load(LoadOptions{File: file, Env: []string{"RUMP9P_SECURITY_SQUASH=false"}})
	if err != nil || c.Security.Squash != nil {
		t.Errorf("squash off via env: %v %v", err, c)
	}
	_, err = Load(LoadOptions{Env: []string{"RUMP9P_SECURITY_SQUASH=false", "RUMP9P_SECURITY_SQUASH_UID=1"}})
	if err == nil || !strings.Contains(err.Error(), "RUMP9P_SECURITY_SQUASH and RUMP9P_SECURITY_SQUASH_UID both set") {
		t.Errorf("conflict: %v", err)
	}
}

func TestEnvNamesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, k := range envKeys {
		n := EnvName(k)
		if prev, dup := seen[n]; dup {
			t.Errorf("keys %q and %q share variable %s", prev, k, n)
		}
		seen[n] = k
		if envByName[n] != k {
			t.Errorf("%s maps to %q, want %q", n, envByName[n], k)
		}
	}
	if EnvName("security.max_connections") != "RUMP9P_SECURITY_MAX_CONNECTIONS" {
		t.Error(EnvName("security.max_connections"))
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "512": 512, "512b": 512, "512k": 512 << 10, "64KiB": 64 << 10, "64KB": 64 << 10,
		"1M": 1 << 20, "1 MiB": 1 << 20, " 2g ": 2 << 30, "3TiB": 3 << 40, "8388607T": 8388607 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "+1", "1.5M", "1MM", "1 X", "0x10", "8388608T", "99999999999999999999"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	for s, want := range map[Size]string{0: "0", 1: "1", 1024: "1KiB", 1536 << 10: "1536KiB", 64 << 20: "64MiB", 1 << 40: "1TiB", 1025: "1025"} {
		if s.String() != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), s.String(), want)
		}
		if back, err := ParseSize(s.String()); err != nil || back != s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s.String(), back, err, s)
		}
	}
}

// Dump writes YAML that loads back to an equal Config.
func TestDumpRoundTrip(t *testing.T) {
	needFakes(t)
	dir := t.TempDir()
	img := writeImage(t, dir, "d.img", fakeFFSMagic)
	c := Defaults()
	c.Listen = []Listener{{"tcp", "[::1]:564"}, {"unix", "/tmp/a \"b\".sock"}, {Network: "stdio"}}
	c.Msize = 12345
	c.Log = Log{Level: "debug", Format: "json"}
	c.Mounts = []Mount{
		{Name: "ro: disk", Type: "ffs", Image: img, ReadOnly: true, Options: map[string]string{"a": "1", "k: v": "#x\n"}},
		{Name: "p", Type: "auto", Image: img, Partition: "auto"},
		{Name: "yes", Type: "tmpfs", Options: map[string]string{"on": "true", "null": ""}},
	}
	c.Security = Security{Squash: &Squash{UID: 7, GID: 8}, ReadOnly: true, MaxConnections: 1, MaxFidsPerConnection: 2,
		MaxInflightPerConnection: 3, MaxMemoryPerConnection: 1 << 20, MaxMemory: 5 << 20, Identity: "map",
		Users: map[uint32]User{1000: {GID: 100, Groups: []uint32{4242, 7}}, 0: {GID: 0}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	text := c.String()
	back, err := loadYAML(t, "", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n%s\ngave\n%s", text, back)
	}
	var buf bytes.Buffer
	if err := Defaults().Dump(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"msize: 1MiB\n", "cache: 64MiB\n", "  squash: false\n", "  - \"tcp:127.0.0.1:5640\"\n", "  max_fids_per_connection: 4096\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("default dump lacks %q:\n%s", want, buf.String())
		}
	}
}

// The example file shipped in examples/ must load, bar its images.
func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../examples/rump9p.yaml")
	if err != nil {
		t.Skip("no example file:", err)
	}
	_, err = Load(LoadOptions{File: writeFile(t, t.TempDir(), "rump9p.yaml", string(data))})
	var es Errors
	if err != nil && !errors.As(err, &es) {
		t.Fatal(err)
	}
	for _, e := range es {
		// The example's images are placeholders: only missing images
		// are acceptable.
		if !strings.HasSuffix(e.Key, ".image") || !strings.HasSuffix(e.Msg, "does not exist") {
			t.Errorf("example: %v", e)
		}
	}
}
