// Package repo is cairn's snapshot store. It wraps kopia's repository
// library (content-defined chunking, deduplication, encryption, compression,
// filesystem and S3 storage) behind its own narrow API; no other package
// imports kopia.
//
// Traps of embedding kopia that this package handles: kopia's fatal-error
// hook calls os.Exit (overridden), its connection file would keep S3 secrets
// in clear (they are given to it in memory instead), its config and caches live under
// cairn's state directory, compression is off unless set (set), and there is
// no default password (a random one is generated into a 0600 key file).
package repo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/maintenance"

	"github.com/cairn-backup/cairn"
)

// DefaultCompression was chosen by measurement (see README, Benchmarks):
// zstd-fastest shrinks text (PHP, JS, CSS, SQL) 3–5× at several hundred MB/s
// a core and stores already-compressed media as it is.
const DefaultCompression = "zstd-fastest"

// DefaultDumpCompression compresses database dumps. s2 is about twice as
// fast as zstd-fastest both ways, which on a busy database server is most
// of a dump's and a restore's time beyond the engine's own; it stores
// SQL text about a third larger (see bench/README.md).
const DefaultDumpCompression = "s2-default"

// contentHash names content (and so deduplicates it) in new repositories.
const contentHash = "BLAKE3-256-128"

// Options open or create a repository.
type Options struct {
	Location Location
	// Password encrypts the repository. When empty, the key file is used.
	Password cairn.Secret
	// KeyFile holds a generated password (0600).
	KeyFile string
	// StateDir holds kopia's connection file and caches for this repository.
	StateDir string
	// Compression names the compressor for new data ("" = DefaultCompression).
	Compression string
	// DumpCompression names the compressor for database dumps ("" =
	// DefaultDumpCompression).
	DumpCompression string
	// Hostname is recorded in snapshots ("" = os.Hostname).
	Hostname string
	// Clock gives snapshots their time (the machine's if nil).
	Clock cairn.Clock
	// Restore opens the repository for reading much data once (see
	// writeConnection).
	Restore bool
	// LimitUpload caps writes to storage, in bytes per second (0 = none).
	LimitUpload float64
	// Logger receives debug logs (nil = discard).
	Logger *slog.Logger
}

// Repo is an open repository: the snapshot store of site.Snapshotter and
// restore.Store, and more (state, checks, repair). Snapshots are listed
// only once complete; many processes may write to one repository at once
// (the engine is lock-free).
type Repo struct {
	opts Options
	kr   repo.Repository
	log  *slog.Logger
	host string
	// packs is the S3 pack cache (nil on local repositories).
	packs *packCache
	// damagedIndexes are the index blobs that could not be read and are
	// hidden from kopia (see guard.go); cairn repair rebuilds them.
	damagedIndexes []blob.ID
	token          string
	onClose        []func()
}

// InitResult tells the caller what Init did.
type InitResult struct {
	// GeneratedKey is the path of a newly generated key file, or "".
	GeneratedKey string
}

// Init creates a new, empty repository at opts.Location. Without a password
// it generates one into opts.KeyFile (reusing that file if it exists).
func Init(ctx context.Context, opts Options) (InitResult, error) {
	var res InitResult
	st, err := openStorage(ctx, opts.Location, true)
	if err != nil {
		return res, err
	}
	defer st.Close(ctx) //nolint:errcheck

	exists, err := initialized(ctx, st, opts.Location)
	if err != nil {
		return res, err
	}
	if exists {
		return res, fmt.Errorf("a repository already exists at %s. Try: use it as it is (cairn snapshots), or choose another location", opts.Location)
	}
	password := opts.Password.Reveal()
	if password == "" {
		password, res.GeneratedKey, err = ensureKeyFile(opts.KeyFile)
		if err != nil {
			return res, err
		}
	}
	err = repo.Initialize(ctx, st, &repo.NewRepositoryOptions{
		BlockFormat: format.ContentFormat{
			// BLAKE3 hashes 3–4× faster than kopia's default BLAKE2b on
			// AVX2 machines, with the same 128-bit content IDs.
			Hash:              contentHash,
			MutableParameters: format.MutableParameters{Version: format.FormatVersion3},
		},
	}, password)
	if err != nil {
		return res, fmt.Errorf("initialize repository at %s: %w", opts.Location, err)
	}
	r, err := Open(ctx, withPassword(opts, password))
	if err != nil {
		return res, err
	}
	defer r.Close(ctx) //nolint:errcheck
	return res, r.claimMaintenance(ctx)
}

func withPassword(o Options, p string) Options { o.Password = cairn.Secret(p); return o }

// Exists reports whether a repository has been initialized at loc.
func Exists(ctx context.Context, loc Location) (bool, error) {
	if loc.S3 == nil {
		if _, err := os.Stat(loc.Path); errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
	}
	st, err := openStorage(ctx, loc, false)
	if err != nil {
		return false, err
	}
	defer st.Close(ctx) //nolint:errcheck
	return initialized(ctx, st, loc)
}

// Open connects to an existing repository.
func Open(ctx context.Context, opts Options) (*Repo, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, c := range []string{opts.Compression, opts.DumpCompression} {
		if err := CheckCompression(c); err != nil {
			return nil, err
		}
	}
	password := opts.Password.Reveal()
	if password == "" {
		b, err := os.ReadFile(opts.KeyFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%w for %s. Try: export CAIRN_PASSWORD=…, set repository.password or password_file in cairn.yaml, or restore the key file %s", cairn.ErrNoPassword, opts.Location, opts.KeyFile)
		case err != nil:
			return nil, fmt.Errorf("read key file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	start := opts.Clock.Now()
	exists, err := Exists(ctx, opts.Location)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("no repository at %s: %w. Try: cairn init", opts.Location, cairn.ErrRepoNotFound)
	}
	token := randomToken()
	cfgFile, err := writeConnection(ctx, opts, token)
	if err != nil {
		return nil, err
	}
	kr, hidden, err := openGuarded(ctx, cfgFile, password, token, log)
	if err != nil {
		if errors.Is(err, repo.ErrInvalidPassword) || isFormatError(err) {
			return nil, diagnoseFormat(ctx, opts.Location, err)
		}
		return nil, fmt.Errorf("open repository %s: %w", opts.Location, storageHint(err))
	}
	host := opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	log.Debug("repository open", "elapsed", time.Since(start))
	r := &Repo{opts: opts, kr: kr, log: log, host: host, damagedIndexes: hidden, token: token}
	r.keepFormatCopy(ctx)
	if c, ok := packCaches.Load(token); ok {
		r.packs = c.(*packCache)
	}
	return r, nil
}

// openGuarded opens the repository, hiding each index blob kopia cannot
// read (and trying again) rather than failing: what the other indexes
// describe stays reachable. It returns the hidden blobs.
func openGuarded(ctx context.Context, cfgFile, password, token string, log *slog.Logger) (repo.Repository, []blob.ID, error) {
	g := &guard{}
	guards.Store(token, g)
	for attempt := 0; ; attempt++ {
		kr, err := repo.Open(ctx, cfgFile, password, &repo.Options{
			OnFatalError: func(err error) {
				// kopia would os.Exit here; cairn fails the operation instead.
				log.Error("repository failure", "err", err)
			},
			DisableRepositoryLog: true,
		})
		if err == nil {
			return kr, g.list(), nil
		}
		id, ok := damagedIndexBlob(err)
		if !ok || g.isHidden(id) || attempt >= maxDamagedIndexes || ctx.Err() != nil {
			guards.Delete(token)
			return nil, nil, err
		}
		log.Info("index blob damaged, opening without it", "blob", id, "err", err.Error())
		g.hide(id)
	}
}

// maxDamagedIndexes bounds how many damaged index blobs an open skips.
const maxDamagedIndexes = 1000

// DamagedIndexes lists the index blobs this open could not read and left
// out: snapshots and files they describe may be missing until
// cairn repair rebuilds the index from the packs.
func (r *Repo) DamagedIndexes() []string {
	out := make([]string, len(r.damagedIndexes))
	for i, id := range r.damagedIndexes {
		out[i] = string(id)
	}
	return out
}

func randomToken() string {
	b := make([]byte, 12)
	rand.Read(b) //nolint:errcheck
	return base64.RawURLEncoding.EncodeToString(b)
}

// Close releases the repository.
// StateDir is this repository's directory of local state (see
// Options.StateDir).
func (r *Repo) StateDir() string { return r.opts.StateDir }

func (r *Repo) Close(ctx context.Context) error {
	for _, f := range r.onClose {
		defer f()
	}
	if r.packs != nil {
		d, n, g := r.packs.stats()
		r.log.Info("pack cache", "downloads", d, "distinct_packs", n, "ranged_reads", g)
	}
	defer guards.Delete(r.token)
	return r.kr.Close(ctx) //nolint:wrapcheck
}

// OnClose has Close call f once the repository is closed: it releases
// what the caller holds for as long as the repository is open (a lock).
func (r *Repo) OnClose(f func()) { r.onClose = append(r.onClose, f) }

// claimMaintenance makes cairn (this user and host) the maintenance owner,
// as kopia runs no maintenance without one.
func (r *Repo) claimMaintenance(ctx context.Context) error {
	return repo.WriteSession(ctx, r.kr, repo.WriteSessionOptions{Purpose: "cairn:init"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		p := maintenance.DefaultParams()
		p.Owner = w.ClientOptions().UsernameAtHost()
		return maintenance.SetParams(ctx, w, &p)
	})
}

func ensureKeyFile(path string) (password, generated string, err error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), "", nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", "", err
	}
	password = base64.RawURLEncoding.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("create key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(password + "\n"); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", "", err
	}
	return password, path, f.Close()
}

func openStorage(ctx context.Context, loc Location, create bool) (blob.Storage, error) {
	if loc.S3 == nil {
		if create {
			if err := os.MkdirAll(loc.Path, 0o700); err != nil {
				return nil, fmt.Errorf("create repository directory: %w", err)
			}
		}
		st, err := filesystem.New(ctx, &filesystem.Options{Path: loc.Path}, create)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", loc.Path, err)
		}
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := s3.New(ctx, s3Options(loc.S3), create)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", loc, storageHint(err))
	}
	return st, nil
}

func s3Options(l *S3Location) *s3.Options {
	c := l.withEnvCredentials()
	return &s3.Options{
		BucketName:      c.Bucket,
		Prefix:          c.Prefix,
		Endpoint:        c.Endpoint,
		DoNotUseTLS:     c.Insecure,
		DoNotVerifyTLS:  c.SkipVerify,
		Region:          c.Region,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey.Reveal(),
		SessionToken:    c.SessionToken.Reveal(),
	}
}

func initialized(ctx context.Context, st blob.Storage, loc Location) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := st.GetMetadata(ctx, format.KopiaRepositoryBlobID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, blob.ErrBlobNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read %s: %w", loc, storageHint(err))
}

// storageHint turns common storage failures into advice.
func storageHint(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "NoSuchBucket") || strings.Contains(msg, "bucket does not exist"):
		return fmt.Errorf("%w. Try: create the bucket first (e.g. mc mb, aws s3 mb), or fix the bucket name", err)
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") ||
		strings.Contains(msg, "i/o timeout") || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w. Try: check the endpoint address and that the storage server is running and reachable", err)
	case strings.Contains(msg, "Access Denied") || strings.Contains(msg, "InvalidAccessKeyId") || strings.Contains(msg, "SignatureDoesNotMatch"):
		return fmt.Errorf("%w. Try: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or repository.s3 in cairn.yaml", err)
	}
	return err
}

// connection is the subset of kopia's connection file that cairn writes.
type connection struct {
	Storage  *blob.ConnectionInfo    `json:"storage"`
	Caching  *content.CachingOptions `json:"caching"`
	Hostname string                  `json:"hostname"`
	Username string                  `json:"username"`
	// Description names the repository in kopia's own tools.
	Description string `json:"description"`
}

// writeConnection writes kopia's connection file under the state directory.
// A local repository keeps no cache: reading its own disk is as fast.
func writeConnection(ctx context.Context, opts Options, token string) (string, error) {
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return "", fmt.Errorf("create state directory: %w", err)
	}
	c := connection{Username: "cairn", Description: "cairn repository " + opts.Location.String()}
	c.Hostname, _ = os.Hostname()
	if opts.Hostname != "" {
		c.Hostname = opts.Hostname
	}
	c.Caching = &content.CachingOptions{}
	if opts.Location.S3 != nil {
		so := cachedS3Options{Options: *s3Options(opts.Location.S3), PackCacheDir: filepath.Join(opts.StateDir, "packs"),
			PackCacheToken: token, CredentialsRef: opts.Location.ID()}
		// The credentials stay in memory (see s3Credentials).
		creds := opts.Location.S3.withEnvCredentials()
		s3Credentials.Store(so.CredentialsRef, s3Creds{AccessKeyID: creds.AccessKeyID,
			SecretAccessKey: creds.SecretAccessKey, Session: creds.SessionToken})
		so.AccessKeyID, so.SecretAccessKey, so.SessionToken = "", "", ""
		so.Limits.UploadBytesPerSecond = opts.LimitUpload
		c.Storage = &blob.ConnectionInfo{Type: cachedS3Type, Config: &so}
		// For snapshots kopia's metadata cache (directory listings,
		// indexes) is what makes incremental snapshots fast; its data
		// cache must then exist too (kopia fails without one) but stays
		// small, as snapshots seldom read data. A restore reads each
		// content once: kopia's caches would only write a second copy of
		// everything to disk, so it runs without them and the pack cache
		// serves its reads.
		if !opts.Restore {
			c.Caching = &content.CachingOptions{
				CacheDirectory:         filepath.Join(opts.StateDir, "cache"),
				ContentCacheSizeBytes:  32 << 20,
				MetadataCacheSizeBytes: 1 << 30,
			}
		}
	} else {
		fo := &filesystem.Options{Path: opts.Location.Path}
		fo.Limits.UploadBytesPerSecond = opts.LimitUpload
		c.Storage = &blob.ConnectionInfo{Type: "filesystem", Config: fo}
	}
	c.Storage = &blob.ConnectionInfo{Type: guardType, Config: &guardOptions{Inner: *c.Storage, Token: token}}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(opts.StateDir, "kopia.config")
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write connection file: %w", err)
	}
	return path, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
