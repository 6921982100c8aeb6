package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/manifest"

	"github.com/cairn-backup/cairn"
)

// Damage records: a manifest per damaged snapshot, beside it, so that the
// snapshot keeps its ID. Their labels say which paths it lost.
const (
	damageType    = "cairn:damage"
	labelSnapshot = "cairn:snapshot"
	labelLost     = "cairn:lost"
	// maxLostLabel bounds how many lost paths a record names.
	maxLostLabel = 100
)

// RepairOptions say how far a repair looks for damage.
type RepairOptions struct {
	// ReadData selects packs whose data is read back first, so that
	// corrupt data is dropped and its snapshots marked too (as
	// CheckOptions.ReadData).
	ReadData DataSubset
}

// RepairReport says what a repair did.
type RepairReport struct {
	// FormatRestored: the damaged format blob was replaced by its copy.
	FormatRestored bool
	// Recovered index entries, read back from the packs' own indexes.
	Recovered, RecoveredPacks int
	// Dropped index entries whose data is lost: the next snapshot
	// stores that data again.
	Dropped int
	// LostRecords counts lost contents that held manifests (snapshot
	// records among them): the snapshots they described are gone.
	LostRecords int
	// Rewritten contents, from packs whose own index was unreadable.
	Rewritten int
	// RemovedIndexes are the damaged index blobs deleted once rebuilt.
	RemovedIndexes []string
	// UnreadablePacks lost their own index too: nothing to recover.
	UnreadablePacks []string
	// Marked are the snapshots now recorded as damaged; Cleared those
	// no longer damaged.
	Marked  []SnapshotDamage
	Cleared []string
}

// Changed reports whether the repair changed anything.
func (r RepairReport) Changed() bool {
	return r.FormatRestored || r.Recovered > 0 || r.Dropped > 0 || r.Rewritten > 0 || len(r.RemovedIndexes) > 0 ||
		len(r.Marked) > 0 || len(r.Cleared) > 0
}

// Repair mends what a check finds: it puts back a damaged format blob
// from cairn's copy, rebuilds the index from the packs' own indexes (a
// damaged or deleted index blob loses nothing still in a pack), drops
// index entries whose data is gone (so that deduplication no longer
// trusts it and the next snapshot stores it again), deletes the damaged
// index blobs, and records which snapshots lost data, with their paths.
// It is safe to run again: a second run finds nothing to do.
func Repair(ctx context.Context, opts Options, ro RepairOptions) (RepairReport, error) {
	var rep RepairReport
	// Without kopia's caches: a cached copy of a damaged index blob
	// would hide the damage.
	opts.Restore = true
	r, err := Open(ctx, opts)
	if errors.Is(err, cairn.ErrDamaged) {
		restored, rerr := restoreFormat(ctx, opts.Location)
		if rerr != nil || !restored {
			return rep, errors.Join(err, rerr)
		}
		rep.FormatRestored = true
		r, err = Open(ctx, opts)
	}
	if err != nil {
		return rep, err
	}
	if err := r.rebuild(ctx, ro, &rep); err != nil {
		r.Close(ctx) //nolint:errcheck
		return rep, err
	}
	if err := r.Close(ctx); err != nil {
		return rep, err
	}
	// Reopened: manifests that the rebuilt index brings back are loaded.
	r, err = Open(ctx, opts)
	if err != nil {
		return rep, err
	}
	defer r.Close(ctx) //nolint:errcheck
	return rep, r.markDamaged(ctx, &rep)
}

// rebuild recovers index entries from packs that no index points into,
// drops the entries whose data is lost, then deletes the damaged index
// blobs (everything they listed that still exists is indexed again).
func (r *Repo) rebuild(ctx context.Context, ro RepairOptions, rep *RepairReport) error {
	res, err := r.scan(ctx, ro.ReadData)
	if err != nil {
		return err
	}
	dr, ok := r.kr.(repo.DirectRepository)
	if !ok {
		return errors.New("repair needs direct access to the repository")
	}
	err = repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "cairn:repair"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		cm := w.ContentManager()
		for _, id := range res.orphans {
			infos, err := cm.RecoverIndexFromPackBlob(ctx, id, res.packs[id], true)
			if err != nil {
				rep.UnreadablePacks = append(rep.UnreadablePacks, string(id))
				continue
			}
			rep.Recovered += len(infos)
			rep.RecoveredPacks++
		}
		for id := range res.bad {
			if err := cm.DeleteContent(ctx, id); err != nil {
				return fmt.Errorf("drop lost content %s: %w", id, err)
			}
			rep.Dropped++
			if id.Prefix() == manifest.ContentPrefix {
				rep.LostRecords++
			}
		}
		// Sound data in a pack whose own index is gone moves to new packs.
		for _, pack := range res.selfless {
			for _, id := range res.byPack[pack] {
				if res.bad[id] {
					continue
				}
				if err := cm.RewriteContent(ctx, id); err != nil {
					return fmt.Errorf("rewrite content %s of pack %s: %w", id, pack, err)
				}
				rep.Rewritten++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild index: %w", err)
	}
	if len(r.damagedIndexes) == 0 {
		return nil
	}
	st, err := openStorage(ctx, r.opts.Location, false)
	if err != nil {
		return err
	}
	defer st.Close(ctx) //nolint:errcheck
	for _, id := range r.damagedIndexes {
		if err := st.DeleteBlob(ctx, id); err != nil && !errors.Is(err, blob.ErrBlobNotFound) {
			return fmt.Errorf("delete damaged index blob %s: %w", id, err)
		}
		rep.RemovedIndexes = append(rep.RemovedIndexes, string(id))
	}
	return nil
}

// markDamaged records every snapshot that lost data, and clears the
// records of those whole again.
func (r *Repo) markDamaged(ctx context.Context, rep *RepairReport) error {
	report, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		return err
	}
	records, err := r.damageRecords(ctx)
	if err != nil {
		return err
	}
	return repo.WriteSession(ctx, r.kr, repo.WriteSessionOptions{Purpose: "cairn:repair"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		damaged := map[string]bool{}
		for _, d := range append(report.Damaged, report.Known...) {
			damaged[d.Snapshot.ID] = true
			label := lostLabel(d.Lost)
			old, ok := records[d.Snapshot.ID]
			if ok && old.Labels[labelLost] == label {
				continue
			}
			if ok {
				if err := w.DeleteManifest(ctx, old.ID); err != nil {
					return err
				}
			}
			labels := map[string]string{manifest.TypeLabelKey: damageType, labelSnapshot: d.Snapshot.ID, labelLost: label}
			if _, err := w.PutManifest(ctx, labels, struct {
				Lost []string `json:"lost"`
			}{d.Lost}); err != nil {
				return fmt.Errorf("record damage of %s: %w", d.Snapshot.ShortID(), err)
			}
			rep.Marked = append(rep.Marked, d)
		}
		for id, m := range records {
			if !damaged[id] {
				if err := w.DeleteManifest(ctx, m.ID); err != nil {
					return err
				}
				rep.Cleared = append(rep.Cleared, id)
			}
		}
		return nil
	})
}

func lostLabel(lost []string) string {
	if len(lost) > maxLostLabel {
		more := fmt.Sprintf("… and %d more", len(lost)-maxLostLabel)
		lost = append(lost[:maxLostLabel:maxLostLabel], more)
	}
	return strings.Join(lost, "\n")
}

// damageRecords maps snapshot IDs to their damage records.
func (r *Repo) damageRecords(ctx context.Context) (map[string]*manifest.EntryMetadata, error) {
	entries, err := r.kr.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: damageType})
	if err != nil {
		return nil, manifestsError(err)
	}
	out := map[string]*manifest.EntryMetadata{}
	for _, e := range entries {
		out[e.Labels[labelSnapshot]] = e
	}
	return out, nil
}
