package repo

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

// TestS3SecretNeverOnDisk: the S3 secret reaches kopia in memory only.
// Neither the connection file kopia reads while the repository opens, nor
// anything left in the state directory after a snapshot, holds it.
func TestS3SecretNeverOnDisk(t *testing.T) {
	srv, bucket := testenv.MinIO(t)
	loc := Location{S3: &S3Location{Bucket: bucket, Prefix: "cairn/", Endpoint: srv.Endpoint,
		Insecure: true, AccessKeyID: srv.AccessKey, SecretAccessKey: cairn.Secret(srv.SecretKey)}}
	ctx := context.Background()
	opts := testOptions(t, loc)
	opts.Password = "pw"

	// What kopia reads while it opens the repository.
	cfg, err := writeConnection(ctx, opts, "token")
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, filepath.Dir(cfg), srv.SecretKey)

	if _, err := Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.php": "<?php echo 1;"})
	if _, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "s", Environment: "e", Path: src}, cairn.NoProgress{}); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, opts.StateDir, srv.SecretKey)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, opts.StateDir, srv.SecretKey)
	assertNoSecret(t, filepath.Dir(opts.KeyFile), srv.SecretKey)
}

func assertNoSecret(t *testing.T, dir, secret string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the S3 secret key", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no file under %s to check", dir)
	}
}
