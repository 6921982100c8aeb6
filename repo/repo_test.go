package repo

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/snapshot"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// backends runs one test body against every kind of storage.
func backends(t *testing.T, body func(t *testing.T, loc Location)) {
	t.Run("local", func(t *testing.T) {
		body(t, Location{Path: filepath.Join(t.TempDir(), "repo")})
	})
	t.Run("s3", func(t *testing.T) {
		srv, bucket := testenv.MinIO(t)
		body(t, Location{S3: &S3Location{Bucket: bucket, Prefix: "cairn/", Endpoint: srv.Endpoint,
			Insecure: true, AccessKeyID: srv.AccessKey, SecretAccessKey: cairn.Secret(srv.SecretKey)}})
	})
}

func testOptions(t *testing.T, loc Location) Options {
	dir := t.TempDir()
	return Options{Location: loc, KeyFile: filepath.Join(dir, "key"), StateDir: filepath.Join(dir, "state"), Hostname: "testhost"}
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, loc Location) {
		ctx := context.Background()
		opts := testOptions(t, loc)
		res, err := Init(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.GeneratedKey != opts.KeyFile {
			t.Fatalf("GeneratedKey = %q, want %q", res.GeneratedKey, opts.KeyFile)
		}
		if st, err := os.Stat(opts.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v, mode %v", err, st.Mode())
		}
		if _, err := Init(ctx, opts); err == nil {
			t.Fatal("second Init succeeded, want an error")
		}
		r, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)

		src := t.TempDir()
		writeTree(t, src, map[string]string{"index.php": "<?php echo 1;", "wp-content/cache/x.html": "cached", "a/b/c.txt": "deep"})
		req := cairn.SnapshotRequest{Site: "blog", Environment: "production", URL: "https://example.com", Path: src, Exclude: []string{"cache/"}}
		s1, err := r.Snapshot(ctx, req, cairn.NoProgress{})
		if err != nil {
			t.Fatal(err)
		}
		if s1.Files != 2 || s1.Bytes != int64(len("<?php echo 1;")+len("deep")) {
			t.Errorf("first snapshot: files=%d bytes=%d, want 2 files, 17 bytes", s1.Files, s1.Bytes)
		}
		// An incremental snapshot still counts every file.
		s2, err := r.Snapshot(ctx, req, cairn.NoProgress{})
		if err != nil {
			t.Fatal(err)
		}
		if s2.Files != 2 || s2.Dirs != s1.Dirs || s2.Bytes != s1.Bytes {
			t.Errorf("second snapshot counts %d/%d/%d, want %d/%d/%d", s2.Files, s2.Dirs, s2.Bytes, s1.Files, s1.Dirs, s1.Bytes)
		}

		list, err := r.Snapshots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != s1.ID || list[1].ID != s2.ID {
			t.Fatalf("Snapshots = %v, want [%s %s]", list, s1.ID, s2.ID)
		}
		got := list[0]
		if got.Site != "blog" || got.Environment != "production" || got.URL != "https://example.com" || got.Host != "testhost" || got.Version != cairn.Version {
			t.Errorf("listed snapshot = %+v", got)
		}

		root, err := r.Root(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		kids, err := root.Children(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, k := range kids {
			names = append(names, k.Name())
		}
		if want := []string{"a", "index.php", "wp-content"}; !equal(names, want) {
			t.Errorf("root = %v, want %v", names, want)
		}
		rc, err := kids[1].Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "<?php echo 1;" {
			t.Errorf("index.php = %q", b)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	backends(t, func(t *testing.T, loc Location) {
		ctx := context.Background()
		opts := testOptions(t, loc)
		if _, err := Open(ctx, opts); !errors.Is(err, cairn.ErrNoPassword) {
			t.Fatalf("Open without key = %v, want ErrNoPassword", err)
		}
		opts.Password = "right"
		if _, err := Open(ctx, opts); !errors.Is(err, cairn.ErrRepoNotFound) {
			t.Fatalf("Open before init = %v, want ErrRepoNotFound", err)
		}
		if _, err := Init(ctx, opts); err != nil {
			t.Fatal(err)
		}
		opts.Password = "wrong"
		if _, err := Open(ctx, opts); !errors.Is(err, cairn.ErrWrongPassword) {
			t.Fatalf("Open with wrong password = %v, want ErrWrongPassword", err)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// kopia's checkpoints (left by a long snapshot that was killed) are never
// listed, and the next complete snapshot of the source removes them.
func TestCheckpointsNeverListedAndDropped(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t, Location{Path: filepath.Join(t.TempDir(), "repo")})
	opts.Password = "pw"
	if _, err := Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a"})
	abs, _ := filepath.Abs(src)
	si := snapshot.SourceInfo{Host: "blog", UserName: "prod", Path: abs}
	err = repo.WriteSession(ctx, r.kr, repo.WriteSessionOptions{}, func(ctx context.Context, w repo.RepositoryWriter) error {
		_, err := snapshot.SaveSnapshot(ctx, w, &snapshot.Manifest{Source: si, IncompleteReason: "checkpoint",
			RootEntry: &snapshot.DirEntry{Name: "x", Type: snapshot.EntryTypeDirectory}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := r.Snapshots(ctx); len(list) != 0 {
		t.Fatalf("a checkpoint is listed: %v", list)
	}
	if _, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "blog", Environment: "prod", Path: src}, cairn.NoProgress{}); err != nil {
		t.Fatal(err)
	}
	mans, err := snapshot.ListSnapshots(ctx, r.kr, si)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mans {
		if m.IncompleteReason != "" {
			t.Errorf("checkpoint %s survived a complete snapshot", m.ID)
		}
	}
	if len(mans) != 1 {
		t.Errorf("%d manifests for the source, want 1", len(mans))
	}
}
