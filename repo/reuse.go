package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"

	"github.com/cairn-backup/cairn"
)

// DumpRef is a database dump stored in the repository: the dump of
// database Name in the snapshot or saved state with ID.
type DumpRef struct{ ID, Name string }

// Reused is a database whose dump, in a snapshot, begins with a dump
// stored before (From), taken by reference: its chunks are neither read
// nor written again. Tail writes what follows, SQL that brings it to the
// database as it is now (it may write nothing), and returns the stats of
// the whole dump. Only the repository knows how to take it so; to
// anything else it is the database it embeds.
type Reused struct {
	cairn.Database
	From DumpRef
	Tail func(ctx context.Context, w io.Writer) ([]cairn.TableStat, error)
}

// dumpEntries lists the chunks of a stored dump, in order.
func (r *Repo) dumpEntries(ctx context.Context, ref DumpRef) ([]*snapshot.DirEntry, error) {
	man, err := snapshot.LoadSnapshot(ctx, r.kr, manifest.ID(ref.ID))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", ref.ID, err)
	}
	root, err := snapshotfs.SnapshotRoot(r.kr, man)
	if err != nil {
		return nil, err
	}
	var e fs.Entry = root
	for _, name := range []string{dbDir, ref.Name + dumpExt} {
		d, ok := e.(fs.Directory)
		if !ok {
			return nil, fmt.Errorf("%s: no dump of %s: %w", ref.ID, ref.Name, cairn.ErrNotFound)
		}
		if e, err = d.Child(ctx, name); err != nil {
			return nil, fmt.Errorf("%s: no dump of %s: %w", ref.ID, ref.Name, cairn.ErrNotFound)
		}
	}
	d, ok := e.(fs.Directory)
	if !ok {
		return nil, fmt.Errorf("%s: the dump of %s is not a directory of chunks", ref.ID, ref.Name)
	}
	kids, err := fs.GetAllEntries(ctx, d)
	if err != nil {
		return nil, err
	}
	out := make([]*snapshot.DirEntry, 0, len(kids))
	for _, k := range kids {
		de, ok := k.(snapshot.HasDirEntry)
		if !ok {
			return nil, fmt.Errorf("%s: chunk %s has no entry", ref.ID, k.Name())
		}
		if _, err := r.verifyObject(ctx, de.DirEntry().ObjectID); err != nil {
			return nil, fmt.Errorf("%s: chunk %s: %w", ref.ID, k.Name(), err)
		}
		out = append(out, de.DirEntry())
	}
	// Kopia keeps a directory's entries in the order they were stored.
	slices.SortFunc(out, func(a, b *snapshot.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// reusedChunk is a stored chunk put in a new dump under a new name: kopia
// takes its entry as it is (see snapshot.HasDirEntryOrNil), unread. Its
// time is the new snapshot's, so that it never matches an earlier
// snapshot's entry of the same name and size.
type reusedChunk struct {
	de   *snapshot.DirEntry
	name string
	t    time.Time
}

var (
	_ fs.File                   = reusedChunk{}
	_ snapshot.HasDirEntryOrNil = reusedChunk{}
)

func (c reusedChunk) Name() string                { return c.name }
func (c reusedChunk) Size() int64                 { return c.de.FileSize }
func (c reusedChunk) Mode() os.FileMode           { return 0o600 }
func (c reusedChunk) ModTime() time.Time          { return c.t }
func (c reusedChunk) IsDir() bool                 { return false }
func (c reusedChunk) Sys() any                    { return nil }
func (c reusedChunk) Owner() fs.OwnerInfo         { return fs.OwnerInfo{} }
func (c reusedChunk) Device() fs.DeviceInfo       { return fs.DeviceInfo{} }
func (c reusedChunk) LocalFilesystemPath() string { return "" }
func (c reusedChunk) Close()                      {}
func (c reusedChunk) Open(context.Context) (fs.Reader, error) {
	return nil, errors.New(c.name + ": a reused chunk is not read")
}

func (c reusedChunk) DirEntryOrNil(context.Context) (*snapshot.DirEntry, error) {
	de := c.de.Clone()
	de.Name, de.ModTime = c.name, fs.UTCTimestampFromTime(c.t)
	return de, nil
}

// stateSource is the kopia source of the state saved under key: no cairn
// snapshot's, and never listed (it has none of cairn's labels).
func stateSource(key string) snapshot.SourceInfo {
	return snapshot.SourceInfo{Host: "cairn-state", UserName: "cairn", Path: "/" + key}
}

// SaveState stores database dumps as state cairn keeps for itself (what
// a clone loaded into a target database), under key: outside any
// snapshot and never listed, but kept from garbage collection like one.
// It replaces the state saved before under the same key and returns the
// new one's ID (for DumpRef). Dumps may be Reused.
func (r *Repo) SaveState(ctx context.Context, key string, dbs []cairn.Database) (string, error) {
	start := r.opts.Clock.Now()
	si := stateSource(key)
	var id manifest.ID
	err := repo.WriteSession(ctx, r.kr, repo.WriteSessionOptions{Purpose: "cairn:state"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		jobs, err := r.newDumpJobs(dctx, dbs)
		if err != nil {
			return err
		}
		root, err := snapshotRoot(nil, jobs, nil, start)
		if err != nil {
			return err
		}
		man, err := r.upload(ctx, w, root, si, nil, false, cairn.NoProgress{})
		for _, j := range jobs {
			j.stop()
		}
		if dumpErr := dumpsFailed(ctx, jobs); dumpErr != nil {
			return dumpErr
		}
		if err != nil {
			return err
		}
		man.Tags = map[string]string{labelLayout: layout}
		if id, err = snapshot.SaveSnapshot(ctx, w, man); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
		old, err := snapshot.ListSnapshotManifests(ctx, w, &si, nil)
		if err != nil {
			return err
		}
		for _, o := range old {
			if o != id {
				if err := w.DeleteManifest(ctx, o); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	r.log.Debug("state saved", "key", key, "elapsed", time.Since(start))
	return string(id), nil
}

// DropState deletes the state saved under key, if any.
func (r *Repo) DropState(ctx context.Context, key string) error {
	si := stateSource(key)
	return repo.WriteSession(ctx, r.kr, repo.WriteSessionOptions{Purpose: "cairn:state"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		old, err := snapshot.ListSnapshotManifests(ctx, w, &si, nil)
		if err != nil {
			return err
		}
		for _, o := range old {
			if err := w.DeleteManifest(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

// StateTables returns the table stats of a dump saved as state, or of a
// snapshot's.
func (r *Repo) StateTables(ctx context.Context, ref DumpRef) ([]cairn.TableStat, error) {
	return r.Tables(ctx, &cairn.Snapshot{ID: ref.ID}, ref.Name)
}
