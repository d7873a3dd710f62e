package vnodeops

import (
	"errors"
	"strings"
	"testing"
)

func TestOptionReader(t *testing.T) {
	o := ReadOptions(map[string]string{"flag": "", "off": "false", "mode": "refuse"})
	if !o.Bool("flag", false) || o.Bool("off", true) || !o.Bool("absent", true) {
		t.Error("Bool: present-empty is true, false parses, absent is the default")
	}
	if got := o.Choice("mode", "ro", "ro", "refuse"); got != "refuse" {
		t.Errorf("Choice: %q", got)
	}
	if err := o.Err(); err != nil {
		t.Errorf("Err with every option read: %v", err)
	}

	o = ReadOptions(map[string]string{"flag": "maybe", "zzz": "1", "aaa": ""})
	o.Bool("flag", false)
	if err := o.Err(); err == nil || !strings.Contains(err.Error(), `option flag: "maybe" is not a boolean`) {
		t.Errorf("bad boolean: %v", err)
	}
	o = ReadOptions(map[string]string{"mode": "sometimes", "zzz": "1"})
	o.Choice("mode", "ro", "ro", "refuse")
	if err := o.Err(); err == nil || !strings.Contains(err.Error(), "mode") || !strings.Contains(err.Error(), "ro, refuse") {
		t.Errorf("bad choice: %v", err)
	}
	o = ReadOptions(map[string]string{"uid": "1000", "mask": "0022", "big": "0800"})
	if o.Uint("uid", 0, 10, 1<<32-1) != 1000 || o.Uint("mask", 0o755, 8, 0o777) != 0o22 || o.Uint("none", 7, 10, 9) != 7 {
		t.Error("Uint: decimal, octal, default")
	}
	o.Uint("big", 0, 8, 0o777)
	if err := o.Err(); err == nil || !strings.Contains(err.Error(), "big") {
		t.Errorf("octal past its maximum: %v", err)
	}
	o = ReadOptions(map[string]string{"tz": "Mars"})
	o.Value("tz", func(v string) error {
		if v != "UTC" {
			return errors.New("not a zone")
		}
		return nil
	})
	if err := o.Err(); err == nil || !strings.Contains(err.Error(), `option tz: "Mars": not a zone`) {
		t.Errorf("Value: %v", err)
	}
	o = ReadOptions(map[string]string{"zzz": "1", "aaa": ""})
	o.Bool("known", false)
	if err := o.Err(); err == nil || err.Error() != "unknown option(s) aaa, zzz (known: known)" {
		t.Errorf("unknown options: %v", err)
	}
}
