package repo

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kopia/kopia/repo/blob"

	"github.com/cairn-backup/cairn"
)

// blobsWith lists a storage's blobs with a prefix.
func blobsWith(t *testing.T, loc Location, prefix blob.ID) map[blob.ID]bool {
	t.Helper()
	ctx := context.Background()
	st, err := openStorage(ctx, loc, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	out := map[blob.ID]bool{}
	if err := st.ListBlobs(ctx, prefix, func(m blob.Metadata) error { out[m.BlobID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// damage rewrites or deletes blobs in storage, as a failing disk would.
func damage(t *testing.T, loc Location, ids []blob.ID, flip bool) {
	t.Helper()
	ctx := context.Background()
	st, err := openStorage(ctx, loc, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	for _, id := range ids {
		if !flip {
			if err := st.DeleteBlob(ctx, id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := getBlob(ctx, st, id)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := st.PutBlob(ctx, id, byteSlice(b), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func newBlobs(before, after map[blob.ID]bool) []blob.ID {
	var out []blob.ID
	for id := range after {
		if !before[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func readNode(t *testing.T, r *Repo, s *cairn.Snapshot, name string) []byte {
	t.Helper()
	ctx := context.Background()
	root, err := r.Root(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	kids, err := root.Children(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		if k.Name() == name {
			f, err := k.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%s: no %s", s.ShortID(), name)
	return nil
}

// A damaged index blob and a lost pack, on every storage: the repository
// opens past the first, Check finds both, Repair brings the hidden
// snapshot back and marks the one that lost data, and the next snapshot
// stores that data again.
func TestCheckRepairDamage(t *testing.T) {
	backends(t, func(t *testing.T, loc Location) {
		ctx := context.Background()
		opts := testOptions(t, loc)
		if _, err := Init(ctx, opts); err != nil {
			t.Fatal(err)
		}
		src := t.TempDir()
		writeTree(t, src, map[string]string{"index.php": "<?php echo 1;"})
		big := make([]byte, 100000)
		rand.Read(big)
		req := cairn.SnapshotRequest{Site: "blog", Environment: "production", Path: src}
		snap := func() *cairn.Snapshot {
			r, err := Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			s, err := r.Snapshot(ctx, req, cairn.NoProgress{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s1 := snap()
		indexes, packs := blobsWith(t, loc, "x"), blobsWith(t, loc, "p")
		if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
			t.Fatal(err)
		}
		s2 := snap()
		newIndexes, newPacks := newBlobs(indexes, blobsWith(t, loc, "x")), newBlobs(packs, blobsWith(t, loc, "p"))
		if len(newIndexes) == 0 || len(newPacks) != 1 {
			t.Fatalf("second snapshot wrote indexes %v and packs %v, want some and one", newIndexes, newPacks)
		}

		damage(t, loc, newIndexes, true)
		checkOpts := opts
		checkOpts.Restore = true // no kopia caches, which hold good copies
		r, err := Open(ctx, checkOpts)
		if err != nil {
			t.Fatalf("open with damaged index blobs: %v", err)
		}
		if got := r.DamagedIndexes(); len(got) != len(newIndexes) {
			t.Errorf("DamagedIndexes = %v, want %v", got, newIndexes)
		}
		rep, err := r.Check(ctx, CheckOptions{})
		r.Close(ctx)
		if err != nil || rep.OK() {
			t.Fatalf("Check with damaged index blobs = %+v, %v; want damage", rep, err)
		}
		if _, err := Repair(ctx, opts, RepairOptions{}); err != nil {
			t.Fatal(err)
		}
		r, err = Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := r.Snapshots(ctx)
		if len(list) != 2 || list[1].ID != s2.ID || len(r.DamagedIndexes()) != 0 {
			t.Fatalf("after repair: snapshots %v, damaged indexes %v; want [%s %s], none", list, r.DamagedIndexes(), s1.ShortID(), s2.ShortID())
		}
		if got := readNode(t, r, list[1], "big.bin"); string(got) != string(big) {
			t.Fatal("big.bin differs after the index was rebuilt")
		}
		r.Close(ctx)

		damage(t, loc, newPacks, false)
		rr, err := Repair(ctx, opts, RepairOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rr.Marked) != 1 || rr.Marked[0].Snapshot.ID != s2.ID || !slices.Equal(rr.Marked[0].Lost, []string{"big.bin"}) || rr.Dropped == 0 {
			t.Fatalf("repair after a lost pack = %+v, want s2 marked, big.bin lost, entries dropped", rr)
		}
		s3 := snap()
		r, err = Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		list, _ = r.Snapshots(ctx)
		if len(list) != 3 || !slices.Equal(list[1].Damaged, []string{"big.bin"}) || list[0].Damaged != nil || list[2].Damaged != nil {
			t.Fatalf("snapshots after repair: %+v", list)
		}
		if got := readNode(t, r, s3, "big.bin"); string(got) != string(big) {
			t.Fatal("the snapshot after the lost pack does not restore big.bin")
		}
	})
}

// Damage to a database dump is named by its database: check says
// "database NAME", beside the file paths.
func TestCheckNamesLostDumps(t *testing.T) {
	ctx := context.Background()
	r, opts := initRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.php": "<?php"})
	db := sqliteDB(t, "CREATE TABLE posts(id, title); INSERT INTO posts VALUES (1, 'one'), (2, 'two');")
	req := cairn.SnapshotRequest{Site: "blog", Environment: "prod", Path: src, Databases: []cairn.Database{db}}
	s, err := r.Snapshot(ctx, req, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	var packs []blob.ID
	for id := range blobsWith(t, opts.Location, "p") {
		packs = append(packs, id)
	}
	damage(t, opts.Location, packs, false)
	rep, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 1 || rep.Damaged[0].Snapshot.ID != s.ID {
		t.Fatalf("Damaged = %+v, want the one snapshot", rep.Damaged)
	}
	if got, want := rep.Damaged[0].Lost, []string{"database app", "index.php"}; !slices.Equal(got, want) {
		t.Errorf("lost %q, want %q", got, want)
	}
}
