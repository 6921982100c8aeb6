package webapp

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
)

// maxConfig bounds what is read of one configuration or version file.
const maxConfig = 8 << 20

// source is the tree an application is read from: a local directory, or
// a tree on another host. Paths are relative and slash-separated.
type source interface {
	// read returns the start of the regular file rel: at most n bytes.
	read(rel string, n int64) ([]byte, error)
	// dirs lists the subdirectories of rel, sorted; files its regular
	// files.
	dirs(rel string) []string
	files(rel string) []string
	// isFile tells whether rel is a regular file.
	isFile(rel string) bool
	// local is rel's path on this machine ("" for a remote tree).
	local(rel string) string
	String() string
}

// localDir reads a directory on this machine, through links as PHP does;
// a FIFO or device is never opened.
type localDir string

func (d localDir) path(rel string) string  { return filepath.Join(string(d), filepath.FromSlash(rel)) }
func (d localDir) local(rel string) string { return d.path(rel) }
func (d localDir) String() string          { return string(d) }

func (d localDir) read(rel string, n int64) ([]byte, error) {
	f, err := files.OpenRegular(d.path(rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

func (d localDir) list(rel string, dirs bool) []string {
	entries, _ := os.ReadDir(d.path(rel))
	var out []string
	for _, e := range entries {
		if e.IsDir() == dirs && (dirs || e.Type().IsRegular()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func (d localDir) dirs(rel string) []string  { return d.list(rel, true) }
func (d localDir) files(rel string) []string { return d.list(rel, false) }

func (d localDir) isFile(rel string) bool {
	st, err := os.Stat(d.path(rel))
	return err == nil && st.Mode().IsRegular()
}

// remoteTree reads a tree over the network. It follows no link: a
// configuration file that is one is not read.
type remoteTree struct {
	ctx context.Context
	t   cairn.Tree
}

func (r remoteTree) local(string) string { return "" }
func (r remoteTree) String() string      { return r.t.String() }

func (r remoteTree) read(rel string, n int64) ([]byte, error) {
	i, err := r.t.Lstat(r.ctx, rel)
	if err != nil {
		return nil, err
	}
	if i.Mode&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symbolic link, which cairn does not follow on another host", rel)
	}
	f, err := r.t.Open(r.ctx, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

func (r remoteTree) list(rel string, dirs bool) []string {
	entries, _ := r.t.ReadDir(r.ctx, rel)
	var out []string
	for _, e := range entries {
		if e.Mode.IsDir() == dirs && (dirs || e.Mode.IsRegular()) {
			out = append(out, e.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (r remoteTree) dirs(rel string) []string  { return r.list(rel, true) }
func (r remoteTree) files(rel string) []string { return r.list(rel, false) }

func (r remoteTree) isFile(rel string) bool {
	i, err := r.t.Lstat(r.ctx, rel)
	return err == nil && i.Mode.IsRegular()
}

// readFile reads a configuration file of src.
func readFile(src source, rel string) (string, error) {
	b, err := src.read(rel, maxConfig)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", rel, err)
	}
	return string(b), nil
}

// join is path.Join, for the relative paths of a source.
func join(elem ...string) string { return path.Join(elem...) }
