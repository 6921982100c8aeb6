package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/restore"
	"github.com/cairn-backup/cairn/rewrite"
	"github.com/cairn-backup/cairn/site"
)

// invalidated records the databases a restore said it would replace.
type invalidated struct{ names []string }

func (i *invalidated) Invalidate(_ context.Context, db cairn.Database) {
	i.names = append(i.names, db.String())
}

type world struct {
	base        string
	prod, stage *cairn.Environment
	sites       *site.Catalog
	repo        *repo.Repo
	engine      *restore.Engine
	inval       *invalidated
	snap        *cairn.Snapshot
}

// newWorld makes a production environment (files and a SQLite database
// holding its URL) snapshotted into a fresh repository, and a staging one.
func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{base: base}
	j := func(p ...string) string { return filepath.Join(append([]string{base}, p...)...) }
	testenv.WriteFile(t, j("prod", "index.php"), "<?php // prod")
	testenv.WriteFile(t, j("prod", "uploads", "a.jpg"), "photo")
	testenv.WriteFile(t, j("stage", "settings.local"), "staging's own")
	testenv.SQLite(t, j("prod.db"), "CREATE TABLE options(v TEXT); INSERT INTO options VALUES ('https://example.com/home');")
	w.prod = &cairn.Environment{Site: "blog", Env: "production", URL: "https://example.com", Files: cairn.Location{Path: j("prod")},
		Databases: []cairn.DSN{cairn.NewDSN("sqlite://" + j("prod.db"))}, Protected: true}
	w.stage = &cairn.Environment{Site: "blog", Env: "staging", URL: "https://staging.example.com", Files: cairn.Location{Path: j("stage")},
		Databases: []cairn.DSN{cairn.NewDSN("sqlite://" + j("stage.db"))}, Preserve: []string{"/settings.local"},
		AfterRestore: []cairn.Action{{Kind: "sql", Arg: "UPDATE options SET v = v || ' (staging)'"}}}
	opts := repo.Options{Location: repo.Location{Path: j("repo")}, KeyFile: j("key"), StateDir: j("state"), Hostname: "testhost"}
	if _, err := repo.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if w.repo, err = repo.Open(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.repo.Close(ctx) })
	w.sites, err = site.New(site.Options{Environments: []*cairn.Environment{w.prod, w.stage}, Own: []string{j("repo"), j("key"), j("state")},
		LockDir: j("state", "locks"), StateDir: j("state")})
	if err != nil {
		t.Fatal(err)
	}
	w.inval = &invalidated{}
	w.engine = &restore.Engine{Store: w.repo, Sites: w.sites, Invalidator: w.inval, Log: nil}
	req, err := w.sites.Request(ctx, w.prod, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if w.snap, err = w.sites.Snapshot(ctx, w.repo, req, cairn.NoProgress{}); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestPlan(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p, err := w.engine.Plan(ctx, w.snap, restore.Target{Env: w.stage}, restore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantPairs := []rewrite.Pair{{From: "https://example.com", To: "https://staging.example.com"}, {From: filepath.Join(w.base, "prod"), To: filepath.Join(w.base, "stage")}}
	if !slices.Equal(p.Pairs, wantPairs) || !p.Delete || !slices.Contains(p.Keep, "/settings.local") || len(p.Databases) != 1 || len(p.Protected) != 0 || len(p.Actions) != 1 {
		t.Errorf("plan onto staging = %+v", p)
	}
	// A rollback needs production confirmed, and rewrites nothing.
	p, err = w.engine.Plan(ctx, w.snap, restore.Target{Env: w.prod}, restore.Options{})
	if err != nil || len(p.Protected) != 1 || p.Protected[0] != w.prod || len(p.Pairs) != 0 {
		t.Errorf("plan of a rollback = %+v, %v", p, err)
	}
	// So does a directory inside production's files, and a database of it.
	p, err = w.engine.Plan(ctx, w.snap, restore.Target{Dir: filepath.Join(w.base, "prod", "uploads")}, restore.Options{})
	if err != nil || len(p.Protected) != 1 || p.Delete {
		t.Errorf("plan onto a directory of production = %+v, %v", p, err)
	}
	p, err = w.engine.Plan(ctx, w.snap, restore.Target{Dir: filepath.Join(w.base, "copy")}, restore.Options{Databases: []string{"sqlite://" + filepath.Join(w.base, "prod.db")}})
	if err != nil || len(p.Protected) != 1 {
		t.Errorf("plan onto production's database = %+v, %v", p, err)
	}
	// A directory target restores files only, and says so.
	p, err = w.engine.Plan(ctx, w.snap, restore.Target{Dir: filepath.Join(w.base, "copy")}, restore.Options{})
	if err != nil || len(p.Databases) != 0 || len(p.Notices) != 1 || !strings.Contains(p.Notices[0], "are not restored to") {
		t.Errorf("plan onto a directory = %+v, %v", p, err)
	}
	for _, o := range []restore.Options{{Only: "everything"}, {Databases: []string{"nope=sqlite:///x.db"}}, {Only: restore.Databases, Databases: []string{"a", "b"}}} {
		if _, err := w.engine.Plan(ctx, w.snap, restore.Target{Dir: filepath.Join(w.base, "copy")}, o); !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("Plan(%+v) = %v, want an invalid argument", o, err)
		}
	}
}

func TestRunOntoAnotherEnvironment(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	p, err := w.engine.Plan(ctx, w.snap, restore.Target{Env: w.stage}, restore.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var dry testenv.Events
	if err := w.engine.Run(ctx, p, &dry); err != nil {
		t.Fatal(err)
	}
	if n := len(testenv.Of[cairn.FileChange](&dry)); n < 2 || len(testenv.Of[cairn.DatabasePlanned](&dry)) != 1 || len(testenv.Of[cairn.ActionRun](&dry)) != 1 || len(w.inval.names) != 0 {
		t.Errorf("dry run: %d changes, events %+v, invalidated %v", n, dry.List, w.inval.names)
	}
	if _, err := os.Stat(filepath.Join(w.base, "stage", "index.php")); err == nil {
		t.Fatal("a dry run wrote the files")
	}

	p.Options.DryRun = false
	var ev testenv.Events
	if err := w.engine.Run(ctx, p, &ev); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(w.base, "stage", "index.php")); string(b) != "<?php // prod" {
		t.Errorf("staging's index.php = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(w.base, "stage", "settings.local")); string(b) != "staging's own" {
		t.Errorf("a preserved file = %q", b)
	}
	if got := testenv.SQLite(t, filepath.Join(w.base, "stage.db"), "SELECT v FROM options"); got != "https://staging.example.com/home (staging)" {
		t.Errorf("staging's database holds %q", got)
	}
	if got := testenv.SQLite(t, filepath.Join(w.base, "prod.db"), "SELECT v FROM options"); got != "https://example.com/home" {
		t.Errorf("production's database was changed: %q", got)
	}
	done := testenv.Of[cairn.FilesRestored](&ev)
	if len(done) != 1 || done[0].Added != 3 || done[0].Deleted != 0 || len(testenv.Of[cairn.DatabaseRestored](&ev)) != 1 || len(testenv.Of[cairn.Rewritten](&ev)) != 1 {
		t.Errorf("events = %+v", ev.List)
	}
	if !slices.Equal(w.inval.names, []string{w.stage.Databases[0].String()}) {
		t.Errorf("invalidated %v, want staging's database", w.inval.names)
	}
}

func TestRunOntoADirectory(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dir := filepath.Join(w.base, "copy")
	testenv.WriteFile(t, filepath.Join(dir, "mine.txt"), "not in the snapshot")
	run := func(o restore.Options) *testenv.Events {
		t.Helper()
		p, err := w.engine.Plan(ctx, w.snap, restore.Target{Dir: dir}, o)
		if err != nil {
			t.Fatal(err)
		}
		var ev testenv.Events
		if err := w.engine.Run(ctx, p, &ev); err != nil {
			t.Fatal(err)
		}
		return &ev
	}
	// What the snapshot lacks is kept, and counted, without Delete.
	if done := testenv.Of[cairn.FilesRestored](run(restore.Options{})); len(done) != 1 || done[0].Extra != 1 {
		t.Errorf("summary = %+v", done)
	}
	if _, err := os.Stat(filepath.Join(dir, "mine.txt")); err != nil {
		t.Errorf("an extra file was deleted without Delete: %v", err)
	}
	run(restore.Options{Delete: true})
	if _, err := os.Stat(filepath.Join(dir, "mine.txt")); err == nil {
		t.Error("an extra file was kept with Delete")
	}
	// A path of the snapshot alone.
	if done := testenv.Of[cairn.FilesRestored](run(restore.Options{Path: "uploads"})); len(done) != 1 || done[0].Unchanged != 1 {
		t.Errorf("--path summary = %+v", done)
	}
	// Never into cairn's own files.
	p, err := w.engine.Plan(ctx, w.snap, restore.Target{Dir: filepath.Join(w.base, "repo", "x")}, restore.Options{})
	if err == nil {
		err = w.engine.Run(ctx, p, cairn.Discard)
	}
	if !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("a restore into the repository: %v", err)
	}
}
