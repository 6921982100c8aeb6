package sshfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/shell"
)

// A tree's directories are listed, when the host lets it, by one `find`
// run there on the first ReadDir: the whole subtree in one stream, as
// rsync's remote half lists it, where SFTP needs an open, two reads and a
// close per directory, each a round trip through sshd and sftp-server (on
// a site of 300 directories, most of a restore's time). Each directory's
// listing is served once, then forgotten; one the tree changed meanwhile
// (a write, a removal, a rename in it) is listed again over SFTP.
//
// The host may not run it: an account limited to SFTP (ForceCommand
// internal-sftp), a restricted shell, a find without -printf (BusyBox).
// Nor is a listing used that find could not finish cleanly (a directory
// it could not read, which SFTP then reports), or one of more than
// listedMax entries (its memory). In each case SFTP lists, as before.

// A listing that goes without a byte for the connection's timeout is given
// up (find on a wedged disk, a host that never answers the command): SFTP
// lists instead. (On 2026-12-03 a listing's output once never ended, and
// a clone waited on it for good; that was not seen again, but nothing
// waits on a remote command unbounded.)

// ListByFind turns the listing by find on; off, every directory is listed
// over SFTP (benchmarks compare the two).
var ListByFind = true

// listedMax bounds the entries a listing holds (about 100 bytes each).
const listedMax = 500_000

// listMarker starts the output of the listing script: output without it
// is not find's (a shell that printed a banner, an SFTP-only account).
const listMarker = "cairn-listing-1\x00"

// findFormat prints, for each entry, its type, permissions, size, time,
// links and path below the starting point, NUL-terminated: a name may
// hold anything but NUL and "/".
const findFormat = `%y %m %s %T@ %n %P\0`

// listing is what find printed: each directory's entries by its path in
// the tree.
type listing map[string][]files.Info

// Prefetch starts the listing of the whole tree in the background (see
// files.Prefetcher): a snapshot's or restore's walk finds it ready, or
// waits for it on its first ReadDir.
func (t *Tree) Prefetch(ctx context.Context) {
	if ListByFind {
		go t.takeListing(ctx, "")
	}
}

// takeListing lists the subtree at rel, unless the tree was listed (or
// its listing was started) before.
func (t *Tree) takeListing(ctx context.Context, rel string) {
	t.listOnce.Do(func() {
		l, err := t.list(ctx, rel)
		t.mu.Lock()
		t.listed, t.listErr = l, err
		t.mu.Unlock()
	})
}

// fromListing returns rel's entries from the tree's listing, running it
// first if no ReadDir did before; ok is false when the listing does not
// hold rel (the host could not list, rel was served already or changed).
func (t *Tree) fromListing(ctx context.Context, rel string) (list []files.Info, ok bool) {
	if !ListByFind {
		return nil, false
	}
	t.takeListing(ctx, rel)
	t.mu.Lock()
	defer t.mu.Unlock()
	list, ok = t.listed[rel]
	delete(t.listed, rel)
	return list, ok
}

// unlist forgets the listings of rel's directory, and of the directory
// above it (where that one's time changed) and, when rel is a directory,
// of rel and what is below it: the tree changed there.
func (t *Tree) unlist(rel string, below bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.listed) == 0 {
		return
	}
	dir := func(p string) string {
		if d := path.Dir(p); d != "." {
			return d
		}
		return ""
	}
	delete(t.listed, dir(rel))
	delete(t.listed, dir(dir(rel)))
	if !below {
		return
	}
	for d := range t.listed {
		if d == rel || strings.HasPrefix(d, rel+"/") || rel == "" {
			delete(t.listed, d)
		}
	}
}

// list runs find below rel on the host and reads its listing; the error
// says why there is none (the caller lists over SFTP instead).
func (t *Tree) list(ctx context.Context, rel string) (listing, error) {
	cmd, err := start(ctx, t.conn, "find", "printf '"+strings.TrimSuffix(listMarker, "\x00")+"\\0' && LC_ALL=C exec find -P "+
		shell.Quote(t.abs(rel))+" -depth -printf "+shell.Quote(findFormat)+"\n")
	if err != nil {
		return nil, err
	}
	l, err := readListing(bufio.NewReaderSize(cmd.Out, 256<<10), rel)
	if err != nil {
		cmd.abandon(err)
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		return nil, err
	}
	return l, nil
}

// readListing parses find's output for the subtree at rel.
func readListing(r *bufio.Reader, rel string) (listing, error) {
	marker, err := r.ReadString(0)
	if err != nil || marker != listMarker {
		return nil, errors.New("not a listing")
	}
	l := listing{}
	n, root := 0, false
	for {
		rec, err := r.ReadString(0)
		if err == io.EOF && rec == "" {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("a listing cut short: %w", err)
		}
		if n++; n > listedMax {
			return nil, fmt.Errorf("more than %d entries", listedMax)
		}
		p, i, err := parseEntry(strings.TrimSuffix(rec, "\x00"))
		if err != nil {
			return nil, err
		}
		full := path.Join(rel, p)
		if full == "." {
			full = ""
		}
		switch {
		case !i.Mode.IsDir():
			delete(l, full) // a directory replaced while find read it
		case l[full] == nil:
			l[full] = []files.Info{} // listed, and empty
		}
		if p == "" { // the starting point, printed last (-depth)
			if !i.Mode.IsDir() {
				return nil, errors.New("the listing's starting point is not a directory")
			}
			root = true
			continue
		}
		dir := path.Dir(full)
		if dir == "." {
			dir = ""
		}
		l[dir] = append(l[dir], i)
	}
	if !root {
		return nil, errors.New("a listing without its starting point")
	}
	return l, nil
}

// parseEntry parses one record of findFormat.
func parseEntry(rec string) (rel string, i files.Info, err error) {
	f := strings.SplitN(rec, " ", 6)
	if len(f) != 6 {
		return "", i, fmt.Errorf("a listing's record %q", rec)
	}
	mode, err := entryMode(f[0], f[1])
	if err != nil {
		return "", i, err
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return "", i, fmt.Errorf("a listing's size: %w", err)
	}
	// SFTP tells whole seconds, and a listing must agree with it: a
	// snapshot taken one way is compared with a tree listed the other.
	sec, frac, _ := strings.Cut(f[3], ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return "", i, fmt.Errorf("a listing's time: %w", err)
	}
	if strings.HasPrefix(sec, "-") && strings.Trim(frac, "0") != "" {
		secs-- // before 1970: whole seconds round down, as SFTP's do
	}
	links, err := strconv.ParseUint(f[4], 10, 64)
	if err != nil {
		return "", i, fmt.Errorf("a listing's link count: %w", err)
	}
	rel = f[5]
	if strings.HasPrefix(rel, "/") || strings.Contains("/"+rel+"/", "/../") || strings.Contains("/"+rel+"/", "/./") || strings.Contains(rel, "//") {
		return "", i, fmt.Errorf("a listing's path %q", rel)
	}
	return rel, files.Info{Name: path.Base(rel), Mode: mode, Size: size, ModTime: time.Unix(secs, 0), Nlink: links}, nil
}

// entryMode is the mode of find's %y and %m, as pkg/sftp makes it of
// SFTP's.
func entryMode(kind, perm string) (fs.FileMode, error) {
	bits, err := strconv.ParseUint(perm, 8, 32)
	if err != nil || bits > 0o7777 {
		return 0, fmt.Errorf("a listing's permissions %q", perm)
	}
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch kind {
	case "f":
	case "d":
		m |= fs.ModeDir
	case "l":
		m |= fs.ModeSymlink
	case "p":
		m |= fs.ModeNamedPipe
	case "s":
		m |= fs.ModeSocket
	case "c":
		m |= fs.ModeDevice | fs.ModeCharDevice
	case "b":
		m |= fs.ModeDevice
	default:
		m |= fs.ModeIrregular
	}
	return m, nil
}
