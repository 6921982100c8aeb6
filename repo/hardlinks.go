package repo

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"

	"github.com/cairn-backup/cairn"
)

// Hard links: kopia records each path as a file of its own, so the paths
// of one inode come back as copies. A snapshot notes the regular files
// that have other names (inode and device equal) in a manifest of its own
// beside the snapshot's, and a restore links them again.
const (
	hardLinksType = "cairn:hardlinks"
	// maxHardLinks bounds the paths recorded: past it, the rest are kept
	// as copies (and the snapshot's warnings say so).
	maxHardLinks = 100000
)

type inode struct{ dev, ino uint64 }

// linkTracker gathers the files of a snapshot that share an inode.
type linkTracker struct {
	byInode map[inode][]string
	count   int
	over    bool
}

// note records rel if the file at local (its path on disk) has other
// names. The caller holds the source's lock.
func (t *linkTracker) note(rel, local string) {
	if local == "" {
		return
	}
	fi, err := os.Lstat(local)
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 2 || !fi.Mode().IsRegular() {
		return
	}
	if t.count >= maxHardLinks {
		t.over = true
		return
	}
	if t.byInode == nil {
		t.byInode = map[inode][]string{}
	}
	k := inode{uint64(st.Dev), st.Ino} //nolint:unconvert // Dev is int32 on some systems
	t.byInode[k] = append(t.byInode[k], rel)
	t.count++
}

// groups returns the sets of two paths or more that name one file, each
// sorted, in a stable order.
func (t *linkTracker) groups() [][]string {
	var out [][]string
	for _, paths := range t.byInode {
		if len(paths) > 1 {
			g := append([]string(nil), paths...)
			sort.Strings(g)
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

type hardLinksJSON struct {
	Groups [][]string `json:"groups"` // paths relative to the files' root, names escaped
}

// saveHardLinks records a snapshot's hard links.
func saveHardLinks(ctx context.Context, w repo.RepositoryWriter, snapID string, groups [][]string) error {
	if len(groups) == 0 {
		return nil
	}
	stored := make([][]string, len(groups))
	for i, g := range groups {
		for _, p := range g {
			stored[i] = append(stored[i], escapePath(p))
		}
	}
	labels := map[string]string{manifest.TypeLabelKey: hardLinksType, labelSnapshot: snapID}
	if _, err := w.PutManifest(ctx, labels, hardLinksJSON{Groups: stored}); err != nil {
		return fmt.Errorf("record hard links: %w", err)
	}
	return nil
}

// HardLinks returns the groups of paths (relative to the snapshot's files,
// slash-separated) that were one file, with other names, when the snapshot
// was taken; nil if none.
func (r *Repo) HardLinks(ctx context.Context, s *cairn.Snapshot) ([][]string, error) {
	entries, err := r.kr.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: hardLinksType, labelSnapshot: s.ID})
	if err != nil {
		return nil, fmt.Errorf("hard links of %s: %w", s.ShortID(), err)
	}
	var out [][]string
	for _, e := range entries {
		var v hardLinksJSON
		if _, err := r.kr.GetManifest(ctx, e.ID, &v); err != nil {
			return nil, fmt.Errorf("hard links of %s: %w", s.ShortID(), err)
		}
		for _, g := range v.Groups {
			var paths []string
			for _, p := range g {
				paths = append(paths, unescapePath(p))
			}
			out = append(out, paths)
		}
	}
	return out, nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		parts[i] = escapeName(part)
	}
	return strings.Join(parts, "/")
}

func unescapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		parts[i] = unescapeName(part)
	}
	return strings.Join(parts, "/")
}
