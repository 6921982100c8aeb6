package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	kfs "github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"

	"github.com/cairn-backup/cairn"
)

// Snapshots lists complete snapshots, oldest first. It reads only manifest
// labels, so it stays fast however many snapshots there are.
func (r *Repo) Snapshots(ctx context.Context) ([]*cairn.Snapshot, error) {
	entries, err := r.kr.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: snapshot.ManifestType})
	if err != nil {
		return nil, manifestsError(err)
	}
	damage, err := r.damageRecords(ctx)
	if err != nil {
		return nil, err
	}
	var out []*cairn.Snapshot
	for _, e := range entries {
		if s, ok := snapshotFromLabels(string(e.ID), e.Labels); ok {
			if d, ok := damage[s.ID]; ok {
				s.Damaged = strings.Split(d.Labels[labelLost], "\n")
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// manifestsError says what to do when kopia cannot load the manifests:
// it loads them all at once, so one lost record hides every snapshot.
func manifestsError(err error) error {
	if strings.Contains(err.Error(), "unable to load manifest contents") {
		return fmt.Errorf("%w: the snapshot records cannot be read: %v. Try: cairn check, then cairn repair", cairn.ErrDamaged, err)
	}
	return fmt.Errorf("list snapshots: %w", err)
}

// Root opens a snapshot's file tree.
func (r *Repo) Root(ctx context.Context, s *cairn.Snapshot) (cairn.Node, error) {
	root, layout, err := r.root(ctx, s)
	if err != nil || layout == "" {
		return root, err
	}
	return r.treeFile(ctx, s, filesDir)
}

// root opens the top of a snapshot's tree and tells its layout ("" for
// the first, files at the top).
func (r *Repo) root(ctx context.Context, s *cairn.Snapshot) (cairn.Node, string, error) {
	man, err := snapshot.LoadSnapshot(ctx, r.kr, manifest.ID(s.ID))
	if err != nil {
		return nil, "", fmt.Errorf("load snapshot %s: %w", s.ShortID(), err)
	}
	root, err := snapshotfs.SnapshotRoot(r.kr, man)
	if err != nil {
		return nil, "", fmt.Errorf("open snapshot %s: %w", s.ShortID(), err)
	}
	return node{e: root, r: r}, man.Tags[labelLayout], nil
}

// node adapts a kopia filesystem entry to cairn.Node.
type node struct {
	e kfs.Entry
	r *Repo
	// mtime is a directory's own time (zero: the entry's); see dirTimes.
	mtime time.Time
}

var _ cairn.ReadPlanner = node{}

// PlanReads orders files by where their data lies (pack, then offset), so
// that a restore reads each pack once, front to back; files of several
// chunks come last, in their given order. On S3, packs still in the pack
// cache go first (a batch starts where the last one ended), and the cache
// is told which packs come next so that it can fetch ahead.
func (n node) PlanReads(ctx context.Context, files []cairn.Node) []int {
	type key struct {
		pack   blob.ID
		offset uint32
		small  bool
	}
	keys := make([]key, len(files))
	order := make([]int, len(files))
	dr, _ := n.r.kr.(repo.DirectRepository)
	for i, f := range files {
		order[i] = i
		fn, ok := f.(node)
		if !ok || dr == nil {
			continue
		}
		h, ok := fn.e.(object.HasObjectID)
		if !ok {
			continue
		}
		cid, _, ok := h.ObjectID().ContentID()
		if !ok {
			continue // several chunks: read by ranges, last
		}
		if info, err := dr.ContentInfo(ctx, cid); err == nil {
			keys[i] = key{info.PackBlobID, info.PackOffset, int64(info.PackedLength) < bigRead}
		}
	}
	var recent map[blob.ID]int
	if n.r.packs != nil {
		recent = n.r.packs.recency()
	}
	sort.SliceStable(order, func(a, b int) bool {
		ka, kb := keys[order[a]], keys[order[b]]
		if (ka.pack == "") != (kb.pack == "") {
			return kb.pack == ""
		}
		ra, aCached := recent[ka.pack]
		rb, bCached := recent[kb.pack]
		if aCached != bCached {
			return aCached
		}
		if aCached && ra != rb {
			return ra < rb
		}
		if ka.pack != kb.pack {
			return ka.pack < kb.pack
		}
		return ka.offset < kb.offset
	})
	if n.r.packs != nil {
		var plan []blob.ID
		count := map[blob.ID]int{}
		for _, i := range order {
			if k := keys[i]; k.small {
				if count[k.pack]++; count[k.pack] == 2 {
					plan = append(plan, k.pack)
				}
			}
		}
		n.r.packs.Plan(plan)
	}
	return order
}

func (n node) Name() string      { return unescapeName(n.e.Name()) }
func (n node) Mode() fs.FileMode { return n.e.Mode() }
func (n node) Size() int64       { return n.e.Size() }
func (n node) ModTime() time.Time {
	if !n.mtime.IsZero() {
		return n.mtime
	}
	return n.e.ModTime()
}

// dirTimes returns the times of d's subdirectories as the snapshot
// recorded them. Kopia's reader reports each directory with the time of
// its newest entry instead (its summary's), and a restore must give a
// directory its own; so the listing is read here a second time, for
// those times only, when d has subdirectories.
func (n node) dirTimes(ctx context.Context, d kfs.Directory, entries []kfs.Entry) map[string]time.Time {
	hasDirs := false
	for _, e := range entries {
		hasDirs = hasDirs || e.IsDir()
	}
	h, ok := d.(object.HasObjectID)
	if !hasDirs || !ok {
		return nil
	}
	rd, err := n.r.kr.OpenObject(ctx, h.ObjectID())
	if err != nil {
		return nil
	}
	defer rd.Close()
	var man snapshot.DirManifest
	if err := json.NewDecoder(rd).Decode(&man); err != nil {
		return nil
	}
	out := map[string]time.Time{}
	for _, e := range man.Entries {
		if e.Type == snapshot.EntryTypeDirectory {
			out[e.Name] = e.ModTime.ToTime()
		}
	}
	return out
}

func (n node) Children(ctx context.Context) ([]cairn.Node, error) {
	d, ok := n.e.(kfs.Directory)
	if !ok {
		return nil, fmt.Errorf("%s: not a directory", n.e.Name())
	}
	entries, err := kfs.GetAllEntries(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", n.e.Name(), err)
	}
	kfs.Sort(entries)
	times := n.dirTimes(ctx, d, entries)
	out := make([]cairn.Node, len(entries))
	for i, e := range entries {
		out[i] = node{e: e, r: n.r, mtime: times[e.Name()]}
	}
	return out, nil
}

func (n node) Open(ctx context.Context) (io.ReadCloser, error) {
	f, ok := n.e.(kfs.File)
	if !ok {
		return nil, fmt.Errorf("%s: not a regular file", n.e.Name())
	}
	return f.Open(ctx) //nolint:wrapcheck
}

func (n node) Readlink(ctx context.Context) (string, error) {
	l, ok := n.e.(kfs.Symlink)
	if !ok {
		return "", fmt.Errorf("%s: not a symbolic link", n.e.Name())
	}
	return l.Readlink(ctx) //nolint:wrapcheck
}
