package repo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	kfs "github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"

	"github.com/cairn-backup/cairn"
)

// DataSubset selects the packs whose data a check reads back: none (the
// zero value), a share of them at random (Percent), or the N-th of T
// fixed slices, so that runs with N = 1…T cover every pack.
type DataSubset struct {
	Percent float64
	N, T    int
}

// ParseDataSubset parses "N%" or "N/T".
func ParseDataSubset(s string) (DataSubset, error) {
	bad := fmt.Errorf("%w: --read-data %q: want a share such as 10%% or a slice such as 1/7", cairn.ErrInvalidArgument, s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 {
			return DataSubset{}, bad
		}
		return DataSubset{Percent: v}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	n, err1 := strconv.Atoi(a)
	t, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || t < 1 || n < 1 || n > t {
		return DataSubset{}, bad
	}
	return DataSubset{N: n, T: t}, nil
}

// String is the subset as the flag spells it ("" for none).
func (d DataSubset) String() string {
	switch {
	case d.T > 0:
		return fmt.Sprintf("%d/%d", d.N, d.T)
	case d.Percent > 0:
		return strconv.FormatFloat(d.Percent, 'f', -1, 64) + "%"
	}
	return ""
}

// pick chooses the packs to read among ids (sorted).
func (d DataSubset) pick(ids []blob.ID) map[blob.ID]bool {
	out := map[blob.ID]bool{}
	switch {
	case d.T > 0:
		for _, id := range ids {
			h := fnv.New32a()
			h.Write([]byte(id))
			if int(h.Sum32()%uint32(d.T)) == d.N-1 {
				out[id] = true
			}
		}
	case d.Percent > 0:
		n := int(math.Ceil(float64(len(ids)) * d.Percent / 100))
		for _, i := range rand.Perm(len(ids))[:n] {
			out[ids[i]] = true
		}
	}
	return out
}

// CheckOptions say how far a check goes.
type CheckOptions struct {
	// ReadData selects packs to read back and verify, beyond the
	// structure check (which reads no data but directories).
	ReadData DataSubset
}

// Problem kinds.
const (
	ProblemDamagedIndex  = "damaged_index"  // an index blob cannot be read
	ProblemMissingPack   = "missing_pack"   // the index points into a pack that is gone
	ProblemTruncatedPack = "truncated_pack" // the index points past a pack's end
	ProblemCorruptData   = "corrupt_data"   // data read back does not match its hash
	ProblemHiddenSnaps   = "unindexed_manifests"
	ProblemPackIndex     = "pack_index"       // a pack's own index is unreadable (found with ReadData)
	ProblemRecords       = "snapshot_records" // snapshot records cannot be read: nothing can be listed
)

// Problem is one piece of damage in the repository's storage.
type Problem struct {
	Kind     string
	Blob     string
	Contents int // contents affected
	Detail   string
}

// SnapshotDamage is what one snapshot lost.
type SnapshotDamage struct {
	Snapshot *cairn.Snapshot
	// Lost are the paths whose data is gone: file paths as in the tree,
	// "database NAME" for a dump, "/" when the whole tree is gone.
	Lost []string
}

// Report is what a check found.
type Report struct {
	Snapshots, Packs, PacksRead, Contents int
	// Unindexed counts contents found in packs that no index lists:
	// left over by an interrupted snapshot, or described by a lost index
	// blob. cairn repair indexes them again.
	Unindexed int
	Problems  []Problem
	// Damaged are snapshots that lost data; Known those among them that
	// cairn repair already recorded as damaged, with the same paths.
	Damaged, Known []SnapshotDamage
	// Healed are snapshots recorded as damaged that are whole again (a
	// later snapshot stored the lost data anew): cairn repair clears
	// their records.
	Healed []*cairn.Snapshot
}

// OK reports whether the check found no damage beyond what is known.
func (r Report) OK() bool { return len(r.Problems) == 0 && len(r.Damaged) == 0 }

// Check verifies the repository: every index blob can be read; every
// content the index lists lies inside a pack that exists; no pack holds
// snapshot manifests that no index lists (a lost index blob hides
// snapshots); every snapshot's tree and all the data it references are
// indexed and sound. Open the repository with Options.Restore, so that
// kopia's caches (which may hold good copies of damaged blobs) stay out
// of the way. With opts.ReadData it reads back that share of the
// packs and verifies every content in them. Damage is in the Report, not
// the error, which is for failures to check at all.
func (r *Repo) Check(ctx context.Context, opts CheckOptions) (Report, error) {
	var rep Report
	st, err := r.scan(ctx, opts.ReadData)
	if err != nil {
		return rep, err
	}
	rep.Packs, rep.PacksRead, rep.Contents, rep.Unindexed = len(st.packs), len(st.read), st.contents, st.unindexed
	rep.Problems = st.problems
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, cairn.ErrDamaged) {
			return rep, err
		}
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemRecords,
			Detail: "snapshot records cannot be read, so no snapshot can be listed until repaired (" + err.Error() + ")"})
		return rep, nil
	}
	rep.Snapshots = len(snaps)
	w := &walker{r: r, bad: st.bad, dirs: map[object.ID][]string{}}
	for _, s := range snaps {
		lost, err := w.snapshot(ctx, s)
		if err != nil {
			return rep, err
		}
		switch d := (SnapshotDamage{Snapshot: s, Lost: lost}); {
		case len(lost) == 0 && s.Damaged != nil:
			rep.Healed = append(rep.Healed, s)
		case len(lost) == 0:
		case s.Damaged != nil && strings.Join(s.Damaged, "\n") == lostLabel(lost):
			rep.Known = append(rep.Known, d)
		default:
			rep.Damaged = append(rep.Damaged, d)
		}
	}
	return rep, nil
}

// scanResult is the storage-level part of a check.
type scanResult struct {
	packs     map[blob.ID]int64
	bad       map[content.ID]bool // lost or corrupt contents
	problems  []Problem
	contents  int
	unindexed int
	// orphans are packs that no index entry points into.
	orphans []blob.ID
	// byPack lists the sound contents the index places in each pack
	// to be read back (only those: memory stays proportional to them);
	// selfless the packs read back whose own index is unreadable.
	byPack   map[blob.ID][]content.ID
	read     map[blob.ID]bool
	selfless []blob.ID
}

func (r *Repo) scan(ctx context.Context, subset DataSubset) (*scanResult, error) {
	dr, ok := r.kr.(repo.DirectRepository)
	if !ok {
		return nil, errors.New("check needs direct access to the repository")
	}
	res := &scanResult{packs: map[blob.ID]int64{}, bad: map[content.ID]bool{}, read: map[blob.ID]bool{}}
	for _, id := range r.damagedIndexes {
		res.problems = append(res.problems, Problem{Kind: ProblemDamagedIndex, Blob: string(id), Detail: "cannot be read; what it lists is missing until repaired"})
	}
	var ids []blob.ID
	for _, prefix := range content.PackBlobIDPrefixes {
		if err := dr.BlobReader().ListBlobs(ctx, prefix, func(m blob.Metadata) error {
			res.packs[m.BlobID] = m.Length
			ids = append(ids, m.BlobID)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("list packs: %w", err)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	toRead := subset.pick(ids)
	missing, truncated := map[blob.ID]int{}, map[blob.ID]int{}
	byPack, used := map[blob.ID][]content.ID{}, map[blob.ID]bool{}
	res.byPack = byPack
	err := dr.ContentReader().IterateContents(ctx, content.IterateOptions{}, func(ci content.Info) error {
		res.contents++
		size, ok := res.packs[ci.PackBlobID]
		switch {
		case !ok:
			missing[ci.PackBlobID]++
			res.bad[ci.ContentID] = true
		case int64(ci.PackOffset)+int64(ci.PackedLength) > size:
			truncated[ci.PackBlobID]++
			res.bad[ci.ContentID] = true
		default:
			used[ci.PackBlobID] = true
			if toRead[ci.PackBlobID] {
				byPack[ci.PackBlobID] = append(byPack[ci.PackBlobID], ci.ContentID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	for _, id := range sortedKeys(missing) {
		res.problems = append(res.problems, Problem{Kind: ProblemMissingPack, Blob: string(id), Contents: missing[id], Detail: "pack is gone"})
	}
	for _, id := range sortedKeys(truncated) {
		res.problems = append(res.problems, Problem{Kind: ProblemTruncatedPack, Blob: string(id), Contents: truncated[id],
			Detail: fmt.Sprintf("pack is %d bytes, shorter than its index says", res.packs[id])})
	}
	for _, id := range ids {
		if !used[id] && missing[id] == 0 && truncated[id] == 0 {
			res.orphans = append(res.orphans, id)
		}
		if !toRead[id] || byPack[id] == nil {
			continue
		}
		res.read[id] = true
		corrupt := 0
		for _, cid := range byPack[id] {
			if _, err := dr.ContentReader().GetContent(ctx, cid); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				corrupt++
				res.bad[cid] = true
			}
		}
		if corrupt > 0 {
			res.problems = append(res.problems, Problem{Kind: ProblemCorruptData, Blob: string(id), Contents: corrupt, Detail: "data read back does not match its checksum"})
		}
	}
	return res, r.scanPackIndexes(ctx, dr, res)
}

// scanPackIndexes reads the own index of each pack no index points into:
// snapshot manifests there mean a lost index blob hides snapshots. It
// also reads the own index of every pack read back: one that cannot be
// read would leave nothing to rebuild from, were the index lost.
func (r *Repo) scanPackIndexes(ctx context.Context, dr repo.DirectRepository, res *scanResult) error {
	if len(res.orphans) == 0 && len(res.read) == 0 {
		return nil
	}
	return repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "cairn:check"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		for _, id := range sortedKeys(res.read) {
			if _, err := w.ContentManager().RecoverIndexFromPackBlob(ctx, id, res.packs[id], false); err != nil {
				res.selfless = append(res.selfless, id)
				res.problems = append(res.problems, Problem{Kind: ProblemPackIndex, Blob: string(id),
					Detail: "its own index cannot be read: its data is sound, but the index could not be rebuilt from it"})
			}
		}
		for _, id := range res.orphans {
			infos, err := w.ContentManager().RecoverIndexFromPackBlob(ctx, id, res.packs[id], false)
			if err != nil {
				r.log.Info("pack without index entries cannot be read", "pack", id, "err", err)
				continue
			}
			manifests := 0
			for _, ci := range infos {
				if _, err := w.ContentInfo(ctx, ci.ContentID); err == nil {
					continue
				}
				res.unindexed++
				if ci.ContentID.Prefix() == manifest.ContentPrefix {
					manifests++
				}
			}
			if manifests > 0 {
				res.problems = append(res.problems, Problem{Kind: ProblemHiddenSnaps, Blob: string(id), Contents: manifests,
					Detail: "holds snapshot records no index lists: an index blob is missing, and snapshots are hidden"})
			}
		}
		return nil
	})
}

func sortedKeys[V any](m map[blob.ID]V) []blob.ID {
	out := make([]blob.ID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// walker finds the paths of snapshots whose data is lost. Directories
// shared between snapshots are walked once.
type walker struct {
	r    *Repo
	bad  map[content.ID]bool
	dirs map[object.ID][]string // directory → lost paths relative to it
}

func (w *walker) snapshot(ctx context.Context, s *cairn.Snapshot) ([]string, error) {
	man, err := snapshot.LoadSnapshot(ctx, w.r.kr, manifest.ID(s.ID))
	if err != nil {
		return []string{"/"}, nil //nolint:nilerr // the snapshot record itself is lost
	}
	if man.RootEntry == nil || !w.objectOK(ctx, man.RootObjectID()) {
		return []string{"/"}, nil
	}
	lost, err := w.dir(ctx, man.RootObjectID())
	if err != nil {
		return nil, err
	}
	return userPaths(lost, man.Tags[labelLayout]), nil
}

// objectOK tells whether every content of an object is indexed and sound.
func (w *walker) objectOK(ctx context.Context, oid object.ID) bool {
	ids, err := w.r.verifyObject(ctx, oid)
	if err != nil {
		return false
	}
	for _, id := range ids {
		if w.bad[id] {
			return false
		}
	}
	return true
}

// verifyObject is kopia's VerifyObject, which also takes the contents
// that repair dropped (marked deleted in the index) as lost.
func (r *Repo) verifyObject(ctx context.Context, oid object.ID) ([]content.ID, error) {
	ids, err := r.kr.VerifyObject(ctx, oid)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}
	for _, id := range ids {
		if ci, err := r.kr.ContentInfo(ctx, id); err != nil || ci.Deleted {
			return nil, fmt.Errorf("object %v: content %v is lost", oid, id)
		}
	}
	return ids, nil
}

func (w *walker) dir(ctx context.Context, oid object.ID) ([]string, error) {
	if lost, ok := w.dirs[oid]; ok {
		return lost, nil
	}
	entries, err := kfs.GetAllEntries(ctx, snapshotfs.DirectoryEntry(w.r.kr, oid, nil))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		w.dirs[oid] = []string{""}
		return w.dirs[oid], nil
	}
	var lost []string
	for _, e := range entries {
		h, ok := e.(object.HasObjectID)
		if !ok {
			continue
		}
		if !w.objectOK(ctx, h.ObjectID()) {
			lost = append(lost, e.Name())
			continue
		}
		if e.IsDir() {
			sub, err := w.dir(ctx, h.ObjectID())
			if err != nil {
				return nil, err
			}
			for _, p := range sub {
				lost = append(lost, strings.TrimSuffix(e.Name()+"/"+p, "/"))
			}
		}
	}
	w.dirs[oid] = lost
	return lost, nil
}

// userPaths names lost tree paths as a user knows them: file paths
// relative to the site, "database NAME" for a dump.
func userPaths(lost []string, lay string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range lost {
		name := p
		if lay != "" {
			switch {
			case p == filesDir:
				name = "/"
			case strings.HasPrefix(p, filesDir+"/"):
				name = strings.TrimPrefix(p, filesDir+"/")
			case p == dbDir:
				name = "databases"
			case strings.HasPrefix(p, dbDir+"/"):
				db, _, _ := strings.Cut(strings.TrimPrefix(p, dbDir+"/"), "/")
				db = strings.TrimSuffix(strings.TrimSuffix(db, dumpExt), tablesExt)
				name = "database " + db
			}
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
