package repo

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	kfs "github.com/kopia/kopia/fs"

	"github.com/cairn-backup/cairn"

	"github.com/cairn-backup/cairn/files"
)

// TreeDirectory is the directory rel of the tree t as a snapshot reads it:
// a remote tree (over SFTP) is snapshotted as a local one is, with the same
// excludes, protection and incremental reuse (a file whose size and time
// match the previous snapshot's is not read again). Entries carry no owner
// nor device: cairn restores neither.
func TreeDirectory(ctx context.Context, t cairn.Tree, rel string) (kfs.Directory, error) {
	i, err := t.Lstat(ctx, rel)
	if err != nil {
		return nil, err
	}
	if !i.Mode.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: t.String() + "/" + rel, Err: files.ErrNotDir}
	}
	return treeDir{treeEntry{t: t, rel: rel, info: i}}, nil
}

type treeEntry struct {
	t    cairn.Tree
	rel  string
	info files.Info
}

func (e treeEntry) Name() string                { return e.info.Name }
func (e treeEntry) Size() int64                 { return e.info.Size }
func (e treeEntry) Mode() os.FileMode           { return e.info.Mode }
func (e treeEntry) ModTime() time.Time          { return e.info.ModTime }
func (e treeEntry) IsDir() bool                 { return e.info.Mode.IsDir() }
func (e treeEntry) Sys() any                    { return nil }
func (e treeEntry) Owner() kfs.OwnerInfo        { return kfs.OwnerInfo{} }
func (e treeEntry) Device() kfs.DeviceInfo      { return kfs.DeviceInfo{} }
func (e treeEntry) LocalFilesystemPath() string { return "" }
func (e treeEntry) Close()                      {}

// entry is the kopia entry of the tree's entry i at rel.
func entry(t cairn.Tree, rel string, i files.Info) kfs.Entry {
	e := treeEntry{t: t, rel: rel, info: i}
	switch m := i.Mode; {
	case m.IsDir():
		return treeDir{e}
	case m&fs.ModeSymlink != 0:
		return treeLink{e}
	case m.IsRegular():
		return treeFile{e}
	}
	return e // a device, pipe or socket: the source leaves it out with a warning
}

type treeDir struct{ treeEntry }

func (d treeDir) SupportsMultipleIterations() bool { return true }

func (d treeDir) Child(ctx context.Context, name string) (kfs.Entry, error) {
	rel := path.Join(d.rel, name)
	i, err := d.t.Lstat(ctx, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, kfs.ErrEntryNotFound
	}
	if err != nil {
		return nil, err
	}
	return entry(d.t, rel, i), nil
}

func (d treeDir) Iterate(ctx context.Context) (kfs.DirectoryIterator, error) {
	list, err := d.t.ReadDir(ctx, d.rel)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(a, b int) bool { return list[a].Name < list[b].Name })
	out := make([]kfs.Entry, len(list))
	for k, i := range list {
		out[k] = entry(d.t, path.Join(d.rel, i.Name), i)
	}
	return kfs.StaticIterator(out, nil), nil
}

type treeLink struct{ treeEntry }

func (l treeLink) Readlink(ctx context.Context) (string, error) { return l.t.Readlink(ctx, l.rel) }

func (l treeLink) Resolve(context.Context) (kfs.Entry, error) {
	return nil, errors.New("cairn never follows a link in a snapshot")
}

type treeFile struct{ treeEntry }

func (f treeFile) Open(ctx context.Context) (kfs.Reader, error) {
	r, err := f.t.Open(ctx, f.rel)
	if err != nil {
		return nil, err
	}
	return &treeReader{ReadCloser: r, f: f}, nil
}

// treeReader reads a file of the tree from its start to its end; it seeks
// only where it is (the uploader reads files through once).
type treeReader struct {
	io.ReadCloser
	f   treeFile
	off int64
}

func (r *treeReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.off += int64(n)
	return n, err
}

func (r *treeReader) Seek(offset int64, whence int) (int64, error) {
	if (whence == io.SeekCurrent && offset == 0) || (whence == io.SeekStart && offset == r.off) {
		return r.off, nil
	}
	return r.off, errors.New("a file of a remote tree is read through once, not seeked")
}

func (r *treeReader) Entry() (kfs.Entry, error) { return r.f, nil }
