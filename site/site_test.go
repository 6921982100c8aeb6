package site

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/internal/targetlock"
)

// catalog makes a catalog of a production and a staging environment in a
// fresh directory, with cairn's repository inside staging's files.
func catalog(t *testing.T) (*Catalog, string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"prod/wp-content", "stage/repo", "state"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(base, "prod", "index.php"), []byte("<?php"), 0o644)
	envs := []*cairn.Environment{
		{Site: "blog", Env: "production", URL: "https://example.com", Files: cairn.Location{Path: filepath.Join(base, "prod")},
			Databases: []cairn.DSN{cairn.NewDSN("sqlite://" + filepath.Join(base, "prod.db"))}, Exclude: []string{"cache/"}, Protected: true},
		{Site: "blog", Env: "staging", Files: cairn.Location{Path: filepath.Join(base, "stage")}},
		{Site: "blog", Env: "far", Files: cairn.Location{Host: "web1", Path: "/var/www"}},
	}
	c, err := New(Options{Environments: envs, Own: []string{filepath.Join(base, "stage", "repo")}, LockDir: filepath.Join(base, "state", "locks"), StateDir: filepath.Join(base, "state")})
	if err != nil {
		t.Fatal(err)
	}
	return c, base
}

func TestRequest(t *testing.T) {
	c, base := catalog(t)
	envs := c.Environments()
	req, err := c.Request(context.Background(), envs[0], []string{"*.log"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if req.Site != "blog" || req.Environment != "production" || req.Path != filepath.Join(base, "prod") || !slices.Equal(req.Exclude, []string{"cache/", "*.log"}) || len(req.Databases) != 1 {
		t.Errorf("request = %+v", req)
	}
	if req, _ := c.Request(context.Background(), envs[0], nil, true); len(req.Databases) != 0 {
		t.Errorf("noDB: %d databases", len(req.Databases))
	}
	if _, err := c.Request(context.Background(), envs[2], nil, false); err == nil {
		t.Error("a remote environment's request succeeded")
	}
	req, err = c.RequestDir(filepath.Join(base, "prod"), "web 1", nil, false)
	if err != nil || req.Site != "prod" || req.Environment != "web-1" {
		t.Errorf("RequestDir = %+v, %v", req, err)
	}
}

func TestGuardAndProtection(t *testing.T) {
	c, base := catalog(t)
	if _, err := c.Guard(filepath.Join(base, "stage", "repo", "x")); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("a target inside the repository: %v", err)
	}
	inside, err := c.Guard(filepath.Join(base, "stage"))
	if err != nil || !slices.Equal(inside, []string{"repo"}) {
		t.Errorf("Guard(stage) = %v, %v; want [repo]", inside, err)
	}
	exact, overlapping := c.At(filepath.Join(base, "prod"))
	if len(exact) != 1 || exact[0].Name() != "blog/production" || len(overlapping) != 0 {
		t.Errorf("At(prod) = %v, %v", exact, overlapping)
	}
	for _, dir := range []string{"prod", "prod/wp-content", ""} {
		got := c.ProtectedAt(filepath.Join(base, dir))
		if len(got) != 1 || got[0].Name() != "blog/production" {
			t.Errorf("ProtectedAt(%q) = %v; want production", dir, got)
		}
	}
	if got := c.ProtectedAt(filepath.Join(base, "stage")); len(got) != 0 {
		t.Errorf("ProtectedAt(stage) = %v", got)
	}
	db, err := database.Open(cairn.NewDSN("sqlite://"+filepath.Join(base, "prod.db")), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prod := c.ProtectedDatabases([]cairn.Database{db}, nil)
	if len(prod) != 1 {
		t.Errorf("ProtectedDatabases = %v; want production", prod)
	}
	if got := c.ProtectedDatabases([]cairn.Database{db}, prod); len(got) != 0 {
		t.Errorf("ProtectedDatabases, production confirmed = %v", got)
	}
	if roots := c.FilesRoots("/x"); !slices.Equal(roots, []string{"/x", filepath.Join(base, "prod"), filepath.Join(base, "stage")}) {
		t.Errorf("FilesRoots = %v", roots)
	}
}

// A lock is taken and given back in the catalog's lock directory (its
// conflicts are targetlock's, tested across processes there); a record
// of a directory a restore made holds for that directory only.
func TestLocksAndRecords(t *testing.T) {
	c, base := catalog(t)
	release, err := c.Lock(filepath.Join(base, "prod"), targetlock.Write)
	if err != nil {
		t.Fatal(err)
	}
	release()
	dir := filepath.Join(base, "made")
	if !IsEmptyDir(dir) {
		t.Error("a missing directory is not empty")
	}
	os.Mkdir(dir, 0o755)
	if c.MadeByRestore(dir) {
		t.Error("a directory cairn did not make is recorded as made")
	}
	if err := c.NoteMadeByRestore(dir); err != nil {
		t.Fatal(err)
	}
	if !c.MadeByRestore(dir) {
		t.Error("the record of a directory cairn made is lost")
	}
	// Another directory later at the same path is not the one recorded.
	os.Remove(dir)
	os.Mkdir(dir, 0o755)
	if c.MadeByRestore(dir) {
		t.Error("a directory made again at the path is taken for the one cairn made")
	}
}
