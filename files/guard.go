package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/cairn-backup/cairn"
)

// errProtectedPath is returned when a restore would have to write,
// replace or remove one of the paths Options.Protect names.
var errProtectedPath = errors.New("cairn never overwrites its own repository, keys or state. Try: restore to another directory, or move the repository out of the target")

// ErrProtectedPath reports whether err is a refusal to touch a protected
// path.
func ErrProtectedPath(err error) bool { return errors.Is(err, errProtectedPath) }

type protection int

const (
	notProtected    protection = iota
	insideProtected            // a protected path or below one
	aboveProtected             // a directory above a protected path
)

// protectedID reports whether the target's entry is one of
// Options.ProtectIDs.
func (r *restorer) protectedID(fi *Info) bool {
	if fi == nil || fi.Ino == 0 {
		return false
	}
	for _, id := range r.opts.ProtectIDs {
		if id.Dev == fi.Dev && id.Ino == fi.Ino {
			return true
		}
	}
	return false
}

// protected tells how rel relates to the paths restore must not touch.
func (r *restorer) protected(rel string) protection {
	for _, p := range r.opts.Protect {
		switch {
		case rel == p || strings.HasPrefix(rel, p+"/") || p == "":
			return insideProtected
		case rel == "" || strings.HasPrefix(p, rel+"/"):
			return aboveProtected
		}
	}
	return notProtected
}

// kept reports whether Keep matches rel, as the snapshot's entry (of
// mode) or the target's (cur, if any) would have it: a link matches
// directory patterns too, so a preserved directory that is a link on
// either side is kept.
func (r *restorer) kept(rel string, mode fs.FileMode, cur *Info) bool {
	match := func(m fs.FileMode) bool {
		return r.opts.Keep.Match(rel, m.IsDir()) || m&fs.ModeSymlink != 0 && r.opts.Keep.Match(rel, true)
	}
	return match(mode) || cur != nil && match(cur.Mode)
}

// modeBits are the bits of a mode restore sets.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// safeMode is a snapshot file restored without its setuid and setgid
// bits (see Stats.Unsafe).
type safeMode struct{ cairn.Node }

func (s safeMode) Mode() fs.FileMode { return s.Node.Mode() &^ (fs.ModeSetuid | fs.ModeSetgid) }

// linkLater reports whether rel is a hard link to a file of its group
// that this restore writes first: it is linked once the copies are done.
func (r *restorer) linkLater(n cairn.Node, rel string, cur *Info) bool {
	g, ok := r.group[rel]
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader[g] == "" {
		r.leader[g] = rel
		return false
	}
	r.links = append(r.links, linkJob{node: n, rel: rel, leader: r.leader[g], cur: cur})
	return true
}

// makeLinks links the hard links linkLater put off to the files of their
// groups written first; one that is that file already is left.
func (r *restorer) makeLinks(ctx context.Context) error {
	sort.Slice(r.links, func(i, j int) bool { return r.links[i].rel < r.links[j].rel })
	for _, l := range r.links {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.cur != nil && l.cur.Nlink > 1 {
			if lead, err := r.dst.Lstat(ctx, l.leader); err == nil && lead.Ino != 0 && lead.Ino == l.cur.Ino && lead.Dev == l.cur.Dev {
				r.mu.Lock()
				r.stats.Unchanged++
				r.mu.Unlock()
				r.opts.Progress.Done(1, l.node.Size())
				continue
			}
		}
		op := OpAdd
		if l.cur != nil {
			op = OpUpdate
		}
		r.report(Change{Op: op, Path: l.rel})
		r.opts.Progress.Done(1, l.node.Size())
		if r.opts.DryRun {
			continue
		}
		if err := r.linker.Link(ctx, l.leader, l.rel); err != nil {
			return fmt.Errorf("link %s to %s: %w", r.where(l.rel), l.leader, hint(err))
		}
	}
	return nil
}
