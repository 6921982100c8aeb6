package repo

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"

	"github.com/cairn-backup/cairn"
)

// Restoring from S3 through kopia costs one ranged GET per file, which
// makes a restore of many small files slow however fast the link. The pack
// cache wraps the S3 storage: on the second ranged read of the same data
// pack it downloads the whole pack once into a local temporary file and
// serves later ranges from there. kopia still verifies every content it
// reads, so a damaged cache file is caught, and any cache failure falls back
// to a plain ranged read.

// cachedS3Type is the storage type cairn writes into kopia's connection file
// for S3 repositories.
const cachedS3Type = "cairn-s3"

// cachedS3Options are kopia's S3 options plus the pack cache's place. They
// are what kopia's connection file holds, so they carry no credentials:
// CredentialsRef names them in s3Credentials, in this process's memory.
type cachedS3Options struct {
	s3.Options
	PackCacheDir   string `json:"cairnPackCacheDir"`
	PackCacheBytes int64  `json:"cairnPackCacheBytes"`
	// PackCacheToken names the cache in packCaches, so that the Repo that
	// opened the storage can find it and ask for prefetches.
	PackCacheToken string `json:"cairnPackCacheToken"`
	// CredentialsRef names the credentials in s3Credentials.
	CredentialsRef string `json:"cairnCredentials"`
}

// packCaches maps tokens to live pack caches.
var packCaches sync.Map

// s3Credentials maps a location's ID to its S3 credentials (s3Creds). They
// live in memory only: kopia gets them when it opens the storage, and its
// connection file (which it reads to open the repository, and may write
// back) never holds them, so no crash can leave them on disk.
var s3Credentials sync.Map

type s3Creds struct {
	AccessKeyID              string
	SecretAccessKey, Session cairn.Secret
}

func init() {
	blob.AddSupportedStorage(cachedS3Type, cachedS3Options{}, openCachedS3)
}

// openCachedS3 is kopia's factory for cachedS3Type storage.
func openCachedS3(ctx context.Context, o *cachedS3Options, create bool) (blob.Storage, error) {
	info := blob.ConnectionInfo{Type: cachedS3Type, Config: o}
	so := o.Options
	if o.CredentialsRef != "" {
		v, ok := s3Credentials.Load(o.CredentialsRef)
		if !ok {
			return nil, errors.New("the S3 credentials of this connection are not in memory: only the cairn process that opens the repository has them")
		}
		c := v.(s3Creds)
		so.AccessKeyID, so.SecretAccessKey, so.SessionToken = c.AccessKeyID, c.SecretAccessKey.Reveal(), c.Session.Reveal()
	}
	st, err := s3.New(ctx, &so, create)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}
	if o.PackCacheDir == "" {
		return withConnectionInfo{st, info}, nil
	}
	c, err := newPackCache(st, o.PackCacheDir, o.PackCacheBytes)
	if err != nil {
		st.Close(ctx) //nolint:errcheck
		return nil, err
	}
	c.info = info
	if o.PackCacheToken != "" {
		c.token = o.PackCacheToken
		packCaches.Store(c.token, c)
	}
	return c, nil
}

// withConnectionInfo describes a storage by its credential-free options
// (kopia's S3 storage would describe itself with its credentials).
type withConnectionInfo struct {
	blob.Storage
	info blob.ConnectionInfo
}

func (w withConnectionInfo) ConnectionInfo() blob.ConnectionInfo { return w.info }

type packCache struct {
	blob.Storage
	dir   string
	limit int64

	mu       sync.Mutex
	touched  map[blob.ID]int
	entries  map[blob.ID]*list.Element // of *packEntry, most recent first
	lru      *list.List
	size     int64
	inflight map[blob.ID]*fetch
	seq      int

	// counters, for -v logs
	downloads, ranged int
	distinct          map[blob.ID]bool

	plan    map[blob.ID]int // pack → position in planned
	planned []blob.ID
	queued  map[blob.ID]bool

	token     string
	info      blob.ConnectionInfo
	wanted    chan blob.ID
	startOnce sync.Once
	bg        context.Context
	stopBg    context.CancelFunc
}

const (
	// prefetchers is how many packs are downloaded ahead at once.
	prefetchers = 4
	// bigRead is the size from which a ranged read is efficient by itself:
	// such reads (chunks of large files) never pull a whole pack in.
	bigRead = 1 << 20
)

type packEntry struct {
	id   blob.ID
	path string
	size int64
}

type fetch struct {
	done chan struct{}
	path string
	err  error
}

func newPackCache(st blob.Storage, parent string, limit int64) (*packCache, error) {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("create pack cache: %w", err)
	}
	removeStale(parent)
	dir, err := os.MkdirTemp(parent, "packs-")
	if err != nil {
		return nil, fmt.Errorf("create pack cache: %w", err)
	}
	if limit <= 0 {
		limit = 512 << 20
	}
	bg, stop := context.WithCancel(context.Background())
	return &packCache{Storage: st, dir: dir, limit: limit, touched: map[blob.ID]int{},
		entries: map[blob.ID]*list.Element{}, lru: list.New(), inflight: map[blob.ID]*fetch{}, distinct: map[blob.ID]bool{},
		queued: map[blob.ID]bool{},
		wanted: make(chan blob.ID, 256), bg: bg, stopBg: stop}, nil
}

// Plan tells the cache which packs the coming reads need, in order: each
// is downloaded whole on its first read, and reading one starts the
// download of the next few, so the copies rarely wait. A new plan replaces
// the old one.
func (c *packCache) Plan(ids []blob.ID) {
	c.startOnce.Do(func() {
		for range prefetchers {
			go func() {
				for {
					select {
					case <-c.bg.Done():
						return
					case id := <-c.wanted:
						c.fetchWhole(c.bg, id) //nolint:errcheck // a failed prefetch falls back to ranged reads
					}
				}
			}()
		}
	})
	c.mu.Lock()
	c.plan = map[blob.ID]int{}
	c.planned = ids
	for i, id := range ids {
		c.plan[id] = i
		c.touched[id] = 2 // planned for several reads: fetch whole at once
	}
	c.mu.Unlock()
	c.want(0, prefetchers)
}

// recency ranks the cached packs, most recently used first.
func (c *packCache) recency() map[blob.ID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	rank := make(map[blob.ID]int, c.lru.Len())
	i := 0
	for el := c.lru.Front(); el != nil; el = el.Next() {
		rank[el.Value.(*packEntry).id] = i
		i++
	}
	return rank
}

// want queues planned packs from..from+n for download.
func (c *packCache) want(from, n int) {
	c.mu.Lock()
	var ids []blob.ID
	for i := from; i < len(c.planned) && i < from+n; i++ {
		id := c.planned[i]
		_, cached := c.entries[id]
		_, busy := c.inflight[id]
		if !cached && !busy && !c.queued[id] {
			c.queued[id] = true
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		select {
		case c.wanted <- id:
		default:
			c.mu.Lock()
			delete(c.queued, id)
			c.mu.Unlock()
		}
	}
}

// GetBlob serves ranges of packs (data "p", metadata "q") from the cache
// once a pack has been read twice; everything else goes straight to storage.
func (c *packCache) GetBlob(ctx context.Context, id blob.ID, offset, length int64, out blob.OutputBuffer) error {
	if length < 0 || length >= bigRead || !(strings.HasPrefix(string(id), "p") || strings.HasPrefix(string(id), "q")) {
		return c.Storage.GetBlob(ctx, id, offset, length, out) //nolint:wrapcheck
	}
	c.mu.Lock()
	pos, planned := c.plan[id]
	c.mu.Unlock()
	if planned {
		c.want(pos+1, prefetchers)
	}
	path, ok := c.lookup(id)
	if !ok {
		c.mu.Lock()
		c.touched[id]++
		second := c.touched[id] >= 2
		if !second {
			c.ranged++
		}
		c.mu.Unlock()
		if !second {
			return c.Storage.GetBlob(ctx, id, offset, length, out) //nolint:wrapcheck
		}
		var err error
		if path, err = c.fetchWhole(ctx, id); err != nil {
			return c.Storage.GetBlob(ctx, id, offset, length, out) //nolint:wrapcheck
		}
	}
	if err := readRange(path, offset, length, out); err != nil {
		out.Reset()
		return c.Storage.GetBlob(ctx, id, offset, length, out) //nolint:wrapcheck
	}
	return nil
}

func (c *packCache) lookup(id blob.ID) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*packEntry).path, true
	}
	return "", false
}

// fetchWhole downloads a pack once, however many readers want it.
func (c *packCache) fetchWhole(ctx context.Context, id blob.ID) (string, error) {
	c.mu.Lock()
	if f, ok := c.inflight[id]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.path, f.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[id] = f
	c.seq++
	path := filepath.Join(c.dir, fmt.Sprintf("%d.pack", c.seq))
	c.mu.Unlock()

	size, err := c.download(ctx, id, path)
	c.mu.Lock()
	c.downloads++
	c.distinct[id] = true
	delete(c.inflight, id)
	if err == nil {
		c.entries[id] = c.lru.PushFront(&packEntry{id: id, path: path, size: size})
		c.size += size
		c.evictLocked()
	}
	c.mu.Unlock()
	f.path, f.err = path, err
	close(f.done)
	return path, err
}

func (c *packCache) download(ctx context.Context, id blob.ID, path string) (int64, error) {
	fo, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return 0, err
	}
	out := &fileOutput{f: fo}
	err = c.Storage.GetBlob(ctx, id, 0, -1, out)
	if cerr := fo.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return 0, err //nolint:wrapcheck
	}
	return int64(out.n), nil
}

// evictLocked drops the least recently used packs above the limit. A
// reader that still has a dropped file open keeps reading it; one that
// arrives later falls back to storage.
func (c *packCache) evictLocked() {
	for c.size > c.limit && c.lru.Len() > 1 {
		el := c.lru.Back()
		e := el.Value.(*packEntry)
		c.lru.Remove(el)
		delete(c.entries, e.id)
		c.size -= e.size
		os.Remove(e.path)
	}
}

// stats reports whole-pack downloads, distinct packs downloaded and
// ranged reads passed through.
func (c *packCache) stats() (downloads, distinct, ranged int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.downloads, len(c.distinct), c.ranged
}

// removeStale deletes caches left by processes that were killed: a live
// one touches its directory whenever it adds a pack.
func removeStale(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), "packs-") && time.Since(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

// ConnectionInfo describes the storage without its credentials.
func (c *packCache) ConnectionInfo() blob.ConnectionInfo { return c.info }

func (c *packCache) Close(ctx context.Context) error {
	c.stopBg()
	if c.token != "" {
		packCaches.Delete(c.token)
	}
	err := c.Storage.Close(ctx)
	os.RemoveAll(c.dir)
	return err //nolint:wrapcheck
}

func readRange(path string, offset, length int64, out blob.OutputBuffer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(out, io.NewSectionReader(f, offset, length))
	if err != nil {
		return err
	}
	if n != length {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// fileOutput is a blob.OutputBuffer that writes to a file, so a whole pack
// never sits in memory.
type fileOutput struct {
	f *os.File
	n int
}

func (o *fileOutput) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.n += n
	return n, err //nolint:wrapcheck
}

func (o *fileOutput) Reset() {
	o.f.Truncate(0)           //nolint:errcheck
	o.f.Seek(0, io.SeekStart) //nolint:errcheck
	o.n = 0
}

func (o *fileOutput) Length() int { return o.n }
