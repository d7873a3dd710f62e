package ukfs_test

import (
	"fmt"
	"io/fs"
	"log"

	"github.com/rump9p/rump9p/ukfs"
)

// Open an image, list it with fs.WalkDir, add a file, and close it so
// that the image is synced and clean.
func Example() {
	fsys, err := ukfs.Open("disk.img", ukfs.Options{Partition: "auto"})
	if err != nil {
		log.Fatal(err) // names the image: missing, locked, no file system
	}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Println(p)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	f, err := fsys.Create("/etc/motd", 0o644)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.Write([]byte("edited without a mount\n")); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		log.Fatal(err)
	}
}
