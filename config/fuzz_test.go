package config

import (
	"reflect"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
)

// FuzzLoadYAML loads arbitrary bytes as a YAML configuration file: it must
// never panic, and a configuration that loads must dump to YAML that loads
// back to an equal Config.
func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte("mounts: [{name: t, type: tmpfs}]\n"))
	f.Add([]byte("listen: [\"tcp:127.0.0.1:1\", stdio]\nmsize: 64k\nmounts:\n  - {name: a, type: tmpfs, options: {x: 1}}\n"))
	f.Add([]byte("security: {squash: {uid: 1, gid: 2}}\nmounts: [{name: a, type: ffs, image: x, partition: auto}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &source{name: "fuzz.yaml", data: data, parser: yaml.Parser()}
		c, err := load(src, nil, nil)
		if err != nil {
			return
		}
		text := c.String()
		back, err := load(&source{name: "dump.yaml", data: []byte(text), parser: yaml.Parser()}, nil, nil)
		if err != nil {
			t.Fatalf("dump of a loaded config does not load: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("dump round trip differs:\n%s\n%s", text, back)
		}
	})
}
