package clone_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/clone"
	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/restore"
	"github.com/cairn-backup/cairn/site"
)

type world struct {
	base        string
	prod, stage *cairn.Environment
	sites       *site.Catalog
	cloner      *clone.Cloner
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := func(p ...string) string { return filepath.Join(append([]string{base}, p...)...) }
	testenv.WriteFile(t, j("prod", "index.php"), "<?php // prod")
	testenv.WriteFile(t, j("prod", "uploads", "a.jpg"), "photo")
	testenv.WriteFile(t, j("stage", "old.txt"), "staging's, not production's")
	testenv.WriteFile(t, j("stage", "settings.local"), "staging's own")
	testenv.SQLite(t, j("prod.db"), "CREATE TABLE options(v TEXT); INSERT INTO options VALUES ('https://example.com/home');")
	testenv.SQLite(t, j("stage.db"), "CREATE TABLE options(v TEXT); INSERT INTO options VALUES ('staging before');")
	w := &world{base: base}
	w.prod = &cairn.Environment{Site: "blog", Env: "production", URL: "https://example.com", Files: cairn.Location{Path: j("prod")},
		Databases: []cairn.DSN{cairn.NewDSN("sqlite://" + j("prod.db"))}}
	w.stage = &cairn.Environment{Site: "blog", Env: "staging", Files: cairn.Location{Path: j("stage")},
		Databases: []cairn.DSN{cairn.NewDSN("sqlite://" + j("stage.db"))}, Preserve: []string{"/settings.local"}, URL: "https://staging.example.com"}
	opts := repo.Options{Location: repo.Location{Path: j("repo")}, KeyFile: j("key"), StateDir: j("state"), Hostname: "testhost"}
	if _, err := repo.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	w.sites, err = site.New(site.Options{Environments: []*cairn.Environment{w.prod, w.stage}, Own: []string{j("repo"), j("key"), j("state")},
		LockDir: j("state", "locks"), StateDir: j("state")})
	if err != nil {
		t.Fatal(err)
	}
	records := clone.NewRecords(r, nil)
	w.cloner = &clone.Cloner{Repo: r, Sites: w.sites, Records: records, Restore: &restore.Engine{Store: r, Sites: w.sites, Invalidator: records}}
	return w
}

// A fresh clone: the source snapshotted, the target's safety snapshot
// taken first, the database rewritten, the files synced (the target's
// preserved ones kept); the summary adds it up.
func TestFreshClone(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var ev testenv.Events
	if err := w.cloner.Run(ctx, w.prod, w.stage, clone.Options{}, &ev); err != nil {
		t.Fatal(err)
	}
	if got := testenv.SQLite(t, filepath.Join(w.base, "stage.db"), "SELECT v FROM options"); got != "https://staging.example.com/home" {
		t.Errorf("staging's database holds %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(w.base, "stage", "uploads", "a.jpg")); string(b) != "photo" {
		t.Errorf("uploads/a.jpg = %q", b)
	}
	if _, err := os.Stat(filepath.Join(w.base, "stage", "old.txt")); err == nil {
		t.Error("a file production lacks was left in staging")
	}
	if b, _ := os.ReadFile(filepath.Join(w.base, "stage", "settings.local")); string(b) != "staging's own" {
		t.Errorf("a preserved file = %q", b)
	}
	safety := testenv.Of[cairn.SafetySnapshot](&ev)
	sums := testenv.Of[cairn.CloneSummary](&ev)
	if len(safety) != 1 || len(sums) != 1 {
		t.Fatalf("events = %+v", ev.List)
	}
	sum := sums[0]
	if sum.Snapshot == "" || sum.SafetySnapshot != safety[0].Snapshot.ID || sum.Rows != 1 || sum.Replacements != 1 || sum.FilesDeleted != 1 || sum.FilesWritten < 2 {
		t.Errorf("summary = %+v", sum)
	}
	// The safety snapshot holds staging as it was.
	all, err := w.cloner.Repo.Snapshots(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("snapshots = %v, %v", all, err)
	}
	if got := testenv.SQLite(t, filepath.Join(w.base, "prod.db"), "SELECT v FROM options"); got != "https://example.com/home" {
		t.Errorf("the source's database was changed: %q", got)
	}

	// Again from that snapshot, as a dry run: nothing changes.
	testenv.WriteFile(t, filepath.Join(w.base, "stage", "new.txt"), "made since")
	var dry testenv.Events
	if err := w.cloner.Run(ctx, w.prod, w.stage, clone.Options{From: "latest", DryRun: true}, &dry); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(w.base, "stage", "new.txt")); err != nil {
		t.Error("a dry run deleted a file")
	}
	if len(testenv.Of[cairn.FileChange](&dry)) != 1 || len(testenv.Of[cairn.DatabasePlanned](&dry)) != 1 || !testenv.Of[cairn.CloneSummary](&dry)[0].DryRun {
		t.Errorf("dry run events = %+v", dry.List)
	}
}

// A dry run with no snapshot of the source outlines the clone.
func TestOutline(t *testing.T) {
	w := newWorld(t)
	var ev testenv.Events
	if err := w.cloner.Run(context.Background(), w.prod, w.stage, clone.Options{DryRun: true}, &ev); err != nil {
		t.Fatal(err)
	}
	steps := testenv.Of[cairn.PlanStep](&ev)
	if len(steps) < 4 || !strings.HasPrefix(steps[0].Text, "would snapshot blog/production") {
		t.Errorf("outline = %+v", steps)
	}
	if _, err := os.Stat(filepath.Join(w.base, "stage", "old.txt")); err != nil {
		t.Error("an outline changed the target")
	}
}

func TestProtected(t *testing.T) {
	w := newWorld(t)
	w.stage.Protected = true
	got, err := clone.Protected(w.sites, w.stage)
	if err != nil || len(got) != 1 || got[0] != w.stage {
		t.Errorf("Protected = %v, %v", got, err)
	}
	// A target sharing a protected environment's database needs that
	// environment confirmed too.
	w.stage.Protected = false
	w.prod.Protected = true
	w.stage.Databases = w.prod.Databases
	if got, err := clone.Protected(w.sites, w.stage); err != nil || len(got) != 1 || got[0] != w.prod {
		t.Errorf("Protected of a target sharing production's database = %v, %v", got, err)
	}
	if err := w.cloner.Run(context.Background(), w.prod, w.prod, clone.Options{}, cairn.Discard); err == nil {
		t.Error("a clone onto its own source ran")
	}
}
