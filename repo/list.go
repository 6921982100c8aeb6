package repo

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
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
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []*cairn.Snapshot
	for _, e := range entries {
		if s, ok := snapshotFromLabels(string(e.ID), e.Labels); ok {
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

// Root opens a snapshot's file tree.
func (r *Repo) Root(ctx context.Context, s *cairn.Snapshot) (cairn.Node, error) {
	man, err := snapshot.LoadSnapshot(ctx, r.kr, manifest.ID(s.ID))
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", s.ShortID(), err)
	}
	root, err := snapshotfs.SnapshotRoot(r.kr, man)
	if err != nil {
		return nil, fmt.Errorf("open snapshot %s: %w", s.ShortID(), err)
	}
	return node{root, r}, nil
}

// node adapts a kopia filesystem entry to cairn.Node.
type node struct {
	e kfs.Entry
	r *Repo
}

var _ cairn.Prefetcher = node{}

// Prefetch asks the pack cache (S3 only) for the packs that hold two or
// more of these files: one download then serves them all.
func (n node) Prefetch(ctx context.Context, files []cairn.Node) {
	if n.r == nil || n.r.packs == nil {
		return
	}
	dr, ok := n.r.kr.(repo.DirectRepository)
	if !ok {
		return
	}
	count := map[blob.ID]int{}
	var order []blob.ID
	for _, f := range files {
		fn, ok := f.(node)
		if !ok {
			continue
		}
		h, ok := fn.e.(object.HasObjectID)
		if !ok {
			continue
		}
		cid, _, ok := h.ObjectID().ContentID()
		if !ok {
			continue // a large file of several chunks: read by ranges
		}
		info, err := dr.ContentInfo(ctx, cid)
		if err != nil {
			continue
		}
		if count[info.PackBlobID]++; count[info.PackBlobID] == 2 {
			order = append(order, info.PackBlobID)
		}
	}
	n.r.packs.Want(order)
}

func (n node) Name() string       { return n.e.Name() }
func (n node) Mode() fs.FileMode  { return n.e.Mode() }
func (n node) Size() int64        { return n.e.Size() }
func (n node) ModTime() time.Time { return n.e.ModTime() }

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
	out := make([]cairn.Node, len(entries))
	for i, e := range entries {
		out[i] = node{e, n.r}
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
