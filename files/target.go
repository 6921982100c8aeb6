// Package files writes snapshot trees onto file trees: it compares what a
// snapshot holds with what a target already has, writes only what differs,
// removes what the snapshot lacks (never excluded or preserved paths), and
// does so in parallel, atomically per file, so that running the same restore
// again after an interruption finishes the job.
package files

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-backup/cairn"
)

// Info describes one entry of a target tree.
type Info = cairn.FileInfo

// Target is a file tree that can be read (a cairn.Tree) and restored
// onto.
type Target interface {
	cairn.Tree
	// Mkdir creates a directory whose parent exists.
	Mkdir(ctx context.Context, rel string, mode fs.FileMode) error
	// WriteFile replaces rel atomically: readers see the old content or
	// the new one, never a part, and an interrupted write leaves rel as
	// it was.
	WriteFile(ctx context.Context, rel string, r io.Reader, mode fs.FileMode, mtime time.Time) error
	// Symlink replaces rel with a symbolic link to target.
	Symlink(ctx context.Context, target, rel string) error
	// RemoveAll removes rel and anything below it.
	RemoveAll(ctx context.Context, rel string) error
	// SetAttrs sets permissions and modification time.
	SetAttrs(ctx context.Context, rel string, mode fs.FileMode, mtime time.Time) error
}

// Linker is implemented by targets that can give a file another name (a
// hard link). Link makes rel another name of the regular file existing,
// replacing any file at rel atomically.
type Linker interface {
	Link(ctx context.Context, existing, rel string) error
}

var _ Linker = (*Local)(nil)

// Patcher is implemented by targets that can rewrite a large file by
// sending only what differs from the file there now, as rsync's delta
// transfer does (with blocks at fixed offsets rather than a rolling hash:
// edits in place and appends are found; an insertion rewrites what
// follows it). It pays where sending is dear (another host) and the file
// large.
type Patcher interface {
	// Patch replaces rel, as WriteFile does (atomically, a new file
	// renamed over it), with r's content, size bytes long: a copy of rel
	// made on its host takes r's blocks where they differ, and is renamed
	// over rel. It returns how many bytes it sent, and same when no block
	// differed. It fails with ErrNoPatch (wrapped, saying why) when it
	// cannot patch this file here (a small file, a host without the
	// tools), for the caller to WriteFile instead; after any other failure
	// too, WriteFile is right.
	Patch(ctx context.Context, rel string, r io.ReadSeeker, size int64, mode fs.FileMode, mtime time.Time) (sent int64, same bool, err error)
}

// ErrNoPatch says a Patcher cannot patch a file: it is to be written
// whole.
var ErrNoPatch = errors.New("not patched")

// PatchMin is the smallest file worth patching: below, sending it whole
// costs about what the round trips of a patch do.
const PatchMin = 8 << 20

// Prefetcher is implemented by targets that can read ahead, in the
// background, what a walk of the whole tree will ask for (another host's
// listing of it), for the walk to find it ready. Whoever is about to walk
// the whole tree calls Prefetch as soon as it is open, and may do other
// work meanwhile; a tree that is not walked after all only did work for
// nothing.
type Prefetcher interface {
	Prefetch(ctx context.Context)
}

// Prefetch starts t's read-ahead when it has one (see Prefetcher).
func Prefetch(ctx context.Context, t cairn.Tree) {
	if p, ok := t.(Prefetcher); ok {
		p.Prefetch(ctx)
	}
}

// tempPrefix marks cairn's in-flight files; leftovers of an interrupted
// restore are removed by the next one.
const (
	tempPrefix = ".cairn-"
	tempSuffix = ".tmp"
)

// IsTemp reports whether name is one a restore gives a file it is
// writing (tempName): .cairn-NAME.~PID-SEQ~.tmp, a form no one else uses: .cairn-NAME.PID-SEQ.tmp.
func IsTemp(name string) bool {
	core, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return false
	}
	core, ok = strings.CutSuffix(core, "~"+tempSuffix)
	dot := strings.LastIndex(core, ".~")
	if !ok || dot < 0 {
		return false
	}
	pid, seq, ok := strings.Cut(core[dot+2:], "-")
	if !ok || pid == "" || seq == "" || strings.Trim(pid, "0123456789") != "" || strings.Trim(seq, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		return false
	}
	return true
}

// tempMaxBase bounds how much of a file's name its temporary name
// repeats: every name the file system takes (255 bytes) must have a
// temporary name it takes too.
const tempMaxBase = 200

var tempSeq atomic.Uint64

// TempName is a fresh temporary name for a file named name, one IsTemp
// knows: a snapshot leaves such files out, and the next restore removes
// them.
func TempName(name string) string { return tempName(name) }

// tempName is a fresh temporary name for a file named name.
func tempName(name string) string {
	if len(name) > tempMaxBase {
		name = name[:tempMaxBase]
	}
	return tempPrefix + name + ".~" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(tempSeq.Add(1), 36) + "~" + tempSuffix
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// ContextReader is r, stopping a long copy once ctx is done.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Missing is a target directory that does not exist yet, for planning a
// restore onto it (a dry run): it holds nothing and takes no writes.
type Missing string

var _ Target = Missing("")

func (m Missing) String() string                                      { return string(m) }
func (m Missing) Lstat(context.Context, string) (Info, error)         { return Info{}, fs.ErrNotExist }
func (m Missing) ReadDir(context.Context, string) ([]Info, error)     { return nil, fs.ErrNotExist }
func (m Missing) Open(context.Context, string) (io.ReadCloser, error) { return nil, fs.ErrNotExist }
func (m Missing) Readlink(context.Context, string) (string, error)    { return "", fs.ErrNotExist }
func (m Missing) Mkdir(context.Context, string, fs.FileMode) error    { return errMissing }
func (m Missing) Symlink(context.Context, string, string) error       { return errMissing }
func (m Missing) RemoveAll(context.Context, string) error             { return errMissing }
func (m Missing) SetAttrs(context.Context, string, fs.FileMode, time.Time) error {
	return errMissing
}
func (m Missing) WriteFile(context.Context, string, io.Reader, fs.FileMode, time.Time) error {
	return errMissing
}

var errMissing = errors.New("the target does not exist")

// Remote opens trees on other hosts (package sshfs's Pool does, over
// SFTP). OpenTree opens the directory at l, a location whose Host is set;
// with create it is made, with its missing parents, when missing. The
// tree stays usable until the Remote is closed.
type Remote interface {
	OpenTree(ctx context.Context, l cairn.Location, create bool) (Target, error)
}

// A Warmer is a Remote that can open a tree ahead, in the background, for
// the next OpenTree of its location to take (with the tree's listing
// under way): Warm writes nothing, and a tree it cannot open is opened,
// or its error said, by OpenTree as without it.
type Warmer interface {
	Warm(ctx context.Context, l cairn.Location)
}
