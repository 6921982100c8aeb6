package repo

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairn-backup/cairn/internal/testenv"
)

func TestPackCache(t *testing.T) {
	srv, bucket := testenv.MinIO(t)
	ctx := context.Background()
	st, err := s3.New(ctx, &s3.Options{BucketName: bucket, Endpoint: srv.Endpoint, DoNotUseTLS: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}, true)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	packs := map[blob.ID][]byte{}
	rng := rand.New(rand.NewSource(1))
	for _, id := range []blob.ID{"pa", "pb", "pc", "qa", "xa"} {
		data := make([]byte, 300<<10)
		rng.Read(data)
		packs[id] = data
		if _, err := cli.PutObject(ctx, bucket, string(id), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := newPackCache(st, t.TempDir(), 700<<10) // room for two packs
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)

	read := func(id blob.ID, off, n int64) {
		t.Helper()
		var out memOutput
		if err := c.GetBlob(ctx, id, off, n, &out); err != nil {
			t.Fatalf("GetBlob(%s, %d, %d): %v", id, off, n, err)
		}
		if !bytes.Equal(out.Bytes(), packs[id][off:off+n]) {
			t.Fatalf("GetBlob(%s, %d, %d) returned other bytes", id, off, n)
		}
	}
	cached := func(id blob.ID) bool { _, ok := c.lookup(id); return ok }

	read("pa", 10, 100) // first touch: a ranged read
	if cached("pa") {
		t.Fatal("pack cached after one read")
	}
	read("pa", 5000, 70000) // second touch: the whole pack comes down
	if !cached("pa") {
		t.Fatal("pack not cached after two reads")
	}
	read("pa", 0, 300<<10)
	read("xa", 1, 2) // not a pack: never cached
	read("xa", 3, 4)
	if cached("xa") {
		t.Fatal("a non-pack blob was cached")
	}

	// A plan brings its first packs down before they are read.
	c.Plan([]blob.ID{"pb", "qa"})
	deadline := time.Now().Add(10 * time.Second)
	for !(cached("pb") && cached("qa")) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cached("pb") || !cached("qa") {
		t.Fatal("wanted packs were not prefetched")
	}
	if cached("pa") {
		t.Error("least recently used pack not evicted past the limit")
	}
	read("qa", 100, 1000)

	// A cache file that vanished falls back to storage.
	p, _ := c.lookup("pb")
	os.Remove(p)
	read("pb", 7, 777)
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) > 2 {
		t.Errorf("cache holds %d files, want at most 2", len(entries))
	}
}

// memOutput is a blob.OutputBuffer in memory.
type memOutput struct{ bytes.Buffer }

func (m *memOutput) Length() int { return m.Len() }
