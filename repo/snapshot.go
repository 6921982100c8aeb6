package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/snapshotfs"
	"github.com/kopia/kopia/snapshot/upload"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/pattern"
)

// Labels cairn puts on kopia snapshot manifests. A manifest without
// labelVersion is not a complete cairn snapshot (kopia's own checkpoints
// carry none) and is never listed.
const (
	labelSite     = "cairn:site"
	labelEnv      = "cairn:env"
	labelURL      = "cairn:url"
	labelHost     = "cairn:host"
	labelVersion  = "cairn:version"
	labelTime     = "cairn:time"
	labelFiles    = "cairn:files"
	labelDirs     = "cairn:dirs"
	labelBytes    = "cairn:bytes"
	labelDuration = "cairn:duration"
	labelSource   = "cairn:source"
	labelWarnings = "cairn:warnings"
)

// incompressible lists extensions stored as they are: compressing them
// costs CPU and saves nothing.
var incompressible = func() []string {
	exts := []string{".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".heic", ".mp4", ".m4v", ".mov",
		".webm", ".mp3", ".m4a", ".ogg", ".opus", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z",
		".rar", ".woff", ".woff2", ".pdf", ".docx", ".xlsx", ".pptx", ".jar", ".br"}
	var all []string
	for _, e := range exts {
		all = append(all, e, strings.ToUpper(e))
	}
	sort.Strings(all)
	return all
}()

// Snapshot stores the tree at req.Path, and the databases' dumps (taken
// first, so that files and data are as close to one moment as they can
// be), and returns the recorded snapshot. On any error nothing is listed:
// no partial snapshot is ever visible through Snapshots.
func (r *Repo) Snapshot(ctx context.Context, req cairn.SnapshotRequest, p cairn.Progress) (*cairn.Snapshot, error) {
	start := r.opts.Clock.Now()
	dir, src, source, err := openSource(ctx, req)
	if err != nil {
		return nil, err
	}
	si := snapshot.SourceInfo{Host: req.Site, UserName: req.Environment, Path: source}

	var snap *cairn.Snapshot
	err = repo.WriteSession(ctx, r.kr, repo.WriteSessionOptions{Purpose: "cairn:snapshot"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		// Dumps still running when the upload fails are stopped.
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		jobs, err := r.newDumpJobs(dctx, req.Databases)
		if err != nil {
			return err
		}
		root, err := snapshotRoot(src.wrapDir(dir, ""), jobs, req.App, start)
		if err != nil {
			return err
		}
		man, err := r.upload(ctx, w, root, si, req.Hints, req.Tree != nil, p)
		for _, j := range jobs {
			j.stop() // a dump kopia did not read to its end ends now
		}
		if dumpErr := dumpsFailed(ctx, jobs); dumpErr != nil && (err == nil || !errors.Is(dumpErr, errNotRead)) {
			return dumpErr
		}
		if err != nil {
			return err
		}
		r.log.Debug("snapshot stage", "stage", "upload", "elapsed", time.Since(start))
		links := src.linkGroups()
		snap = &cairn.Snapshot{
			Time: man.StartTime.ToTime(), Site: req.Site, Environment: req.Environment,
			URL: req.URL, Host: r.host, Source: source, Version: cairn.Version,
			Warnings: append(append(slices.Clone(req.Warnings), src.warningsSorted()...), changedWarnings(src.changedFiles())...), App: req.App,
		}
		for _, j := range jobs {
			snap.Databases = append(snap.Databases, j.info())
		}
		if s := filesSummary(ctx, w, man); s != nil {
			snap.Files, snap.Dirs, snap.Bytes = s.TotalFileCount, s.TotalDirCount, s.TotalFileSize
		}
		snap.Duration = time.Since(start)
		man.Tags = labelsOf(snap)
		man.Tags[labelLayout] = layout
		id, err := snapshot.SaveSnapshot(ctx, w, man)
		if err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
		snap.ID = string(id)
		if err := saveHardLinks(ctx, w, snap.ID, links); err != nil {
			return err
		}
		r.log.Debug("snapshot stage", "stage", "saved", "elapsed", time.Since(start))
		return r.dropCheckpoints(ctx, w, si)
	})
	if err != nil {
		return nil, err
	}
	r.log.Debug("snapshot stage", "stage", "flushed", "elapsed", time.Since(start))
	return snap, nil
}

// openSource opens the tree a snapshot reads, with its rules (excludes,
// cairn's own files left out), and names its source: the path as given,
// or the remote tree's URL.
func openSource(ctx context.Context, req cairn.SnapshotRequest) (fs.Directory, *source, string, error) {
	excl, err := pattern.Compile(req.Exclude...)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: exclude: %v", cairn.ErrInvalidArgument, err)
	}
	src := &source{exclude: excl, mirror: req.Mirror, protectIDs: map[[2]uint64]bool{}}
	if req.Tree != nil {
		// cairn's own files are on this machine, never in a remote tree.
		dir, err := TreeDirectory(ctx, req.Tree, "")
		if err != nil {
			return nil, nil, "", fmt.Errorf("snapshot %s: %w", req.Tree, err)
		}
		name := req.Path
		if name == "" {
			name = req.Tree.String()
		}
		return dir, src, name, nil
	}
	abs, err := filepath.Abs(req.Path)
	if err != nil {
		return nil, nil, "", err
	}
	// The tree is read where its path leads (a deploy layout's current ->
	// releases/42), and recorded under the path as given.
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, nil, "", fmt.Errorf("snapshot %s: %w", req.Path, err)
	}
	if st, err := os.Stat(resolved); err != nil {
		return nil, nil, "", fmt.Errorf("snapshot %s: %w", req.Path, err)
	} else if !st.IsDir() {
		return nil, nil, "", fmt.Errorf("snapshot %s: not a directory", req.Path)
	}
	dir, err := localfs.Directory(resolved)
	if err != nil {
		return nil, nil, "", fmt.Errorf("snapshot %s: %w", req.Path, err)
	}
	src.protect = relativeInside(resolved, req.Protect)
	for _, id := range req.ProtectIDs {
		src.protectIDs[id] = true
	}
	return dir, src, abs, nil
}

// upload stores root as the snapshot of si; remote says its files come
// over a network (read through once each, never in parallel parts).
func (r *Repo) upload(ctx context.Context, w repo.RepositoryWriter, root fs.Directory, si snapshot.SourceInfo, hints []string, remote bool, p cairn.Progress) (*snapshot.Manifest, error) {
	u := upload.NewUploader(w)
	prog := &uploadProgress{p: p}
	u.Progress = prog
	u.CheckpointInterval = 15 * time.Minute
	// Scanning a tree is mostly waiting for the disk (cold inodes), so
	// more readers than cores keep it busy.
	u.ParallelUploads = max(8, runtime.NumCPU())
	if remote {
		// Over a network, each file waits for round trips: more in
		// flight keep the connection full (64 against 8 took a 1 GiB
		// tree over SSH from 13 s to 8 s; see bench/README.md).
		u.ParallelUploads = 64
	}

	pol := *policy.DefaultPolicy
	comp := r.opts.Compression
	if comp == "" {
		comp = DefaultCompression
	}
	pol.CompressionPolicy = policy.CompressionPolicy{CompressorName: compression.Name(comp), NeverCompress: incompressible}
	pol.MetadataCompressionPolicy = policy.MetadataCompressionPolicy{CompressorName: "zstd-fastest"}
	pol.FilesPolicy = policy.FilesPolicy{}
	if remote {
		never := policy.OptionalInt64(1 << 62)
		pol.UploadPolicy.ParallelUploadAboveSize = &never
	}
	f := policy.OptionalBool(false)
	pol.ErrorHandlingPolicy = policy.ErrorHandlingPolicy{IgnoreFileErrors: &f, IgnoreDirectoryErrors: &f, IgnoreUnknownTypes: newTrue()}
	dumps := pol
	dumps.SplitterPolicy = policy.SplitterPolicy{Algorithm: dumpSplitter}
	dumpComp := r.opts.DumpCompression
	if dumpComp == "" {
		dumpComp = DefaultDumpCompression
	}
	dumps.CompressionPolicy = policy.CompressionPolicy{CompressorName: compression.Name(dumpComp)}
	tree := policy.BuildTree(map[string]*policy.Policy{".": &pol, "./" + dbDir: &dumps}, policy.DefaultPolicy)

	previous, err := snapshot.FindPreviousManifests(ctx, w, si, nil)
	if err != nil {
		return nil, fmt.Errorf("find previous snapshots: %w", err)
	}
	// Kopia takes an unchanged file's contents from a previous snapshot
	// without looking at them: one that lost data must not lend it.
	damaged, err := r.damageRecords(ctx)
	if err != nil {
		return nil, err
	}
	previous = slices.DeleteFunc(previous, func(m *snapshot.Manifest) bool { return damaged[string(m.ID)] != nil })
	var hinted []*snapshot.Manifest
	for _, id := range hints {
		// A tree restored from another snapshot has its files' sizes and
		// times: kopia may take their contents from it, unread.
		if m, err := snapshot.LoadSnapshot(ctx, w, manifest.ID(id)); err == nil && m.Tags[labelLayout] == layout && damaged[id] == nil {
			hinted = append(hinted, m)
		}
	}
	// Kopia looks for each file in the previous snapshots in turn, reading
	// each one's directory as it goes: the tree most likely restored from
	// comes first, so that the others are seldom read.
	previous = append(hinted, previous...)
	stop := context.AfterFunc(ctx, u.Cancel)
	defer stop()
	man, err := u.Upload(ctx, root, tree, si, previous...)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", si.Path, err)
	}
	if failed := prog.failures(); len(failed) > 0 {
		var unread, other []string
		for _, f := range failed {
			if rel, ok := strings.CutPrefix(f, filesDir+"/"); ok {
				unread = append(unread, rel)
			} else {
				other = append(other, f)
			}
		}
		if len(other) > 0 {
			return nil, fmt.Errorf("snapshot %s: %s", si.Path, strings.Join(other, "; "))
		}
		if lost := connectionLost(unread); lost > 0 {
			return nil, fmt.Errorf("%s: %w while %d file(s) and directories were still to be read, so no snapshot was recorded. Try: check the network to that host, then run the same command again", si.Path, files.ErrConnectionLost, lost)
		}
		return nil, unreadableError(unread)
	}
	if man.IncompleteReason != "" {
		return nil, fmt.Errorf("%w: %s", cairn.ErrIncomplete, man.IncompleteReason)
	}
	return man, nil
}

// dumpsFailed returns the first failed dump's error, once every dump has
// ended. A dump that failed makes the whole snapshot fail: a snapshot
// without one of its databases is not a snapshot of the site.
func dumpsFailed(ctx context.Context, jobs []*dumpJob) error {
	var first error
	for _, j := range jobs {
		if err := j.wait(); err != nil && first == nil {
			first = err
		}
	}
	if first != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// filesSummary is the summary of the snapshot's files directory.
func filesSummary(ctx context.Context, rep repo.Repository, man *snapshot.Manifest) *fs.DirectorySummary {
	root, err := snapshotfs.SnapshotRoot(rep, man)
	if err != nil {
		return nil
	}
	d, ok := root.(fs.Directory)
	if !ok {
		return nil
	}
	f, err := d.Child(ctx, filesDir)
	if err != nil {
		return nil
	}
	if de, ok := f.(snapshot.HasDirEntry); ok {
		return de.DirEntry().DirSummary
	}
	return nil
}

func newTrue() *policy.OptionalBool { t := policy.OptionalBool(true); return &t }

// connectionLost counts the failures that are a lost connection (to the
// host of a remote tree), if every failure is.
func connectionLost(failed []string) int {
	for _, f := range failed {
		if !strings.Contains(f, ": connection lost") && !strings.HasSuffix(f, ": EOF") {
			return 0
		}
	}
	return len(failed)
}

func unreadableError(failed []string) error {
	n := len(failed)
	if n > 10 {
		failed = append(failed[:10], fmt.Sprintf("… and %d more", n-10))
	}
	return fmt.Errorf("%d file(s) could not be read, so no snapshot was recorded:\n  %s\nTry: run cairn as a user who can read them, or leave them out with --exclude PATTERN (or exclude: in cairn.yaml)",
		n, strings.Join(failed, "\n  "))
}

func changedWarnings(changed []string) []string {
	var out []string
	for _, c := range changed {
		out = append(out, c+": changed while being read; the snapshot holds the data as it was read")
	}
	return out
}

// dropCheckpoints deletes kopia's checkpoint manifests for the source once a
// complete snapshot exists. Checkpoints are the source's manifests without
// cairn's labels, so labels alone tell them apart: no manifest is loaded,
// however long the history.
func (r *Repo) dropCheckpoints(ctx context.Context, w repo.RepositoryWriter, si snapshot.SourceInfo) error {
	entries, err := w.FindManifests(ctx, map[string]string{
		manifest.TypeLabelKey: snapshot.ManifestType, snapshot.HostnameLabel: si.Host,
		snapshot.UsernameLabel: si.UserName, snapshot.PathLabel: si.Path,
	})
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	for _, e := range entries {
		if e.Labels[labelVersion] == "" {
			if err := w.DeleteManifest(ctx, e.ID); err != nil {
				return fmt.Errorf("delete checkpoint: %w", err)
			}
		}
	}
	return nil
}

func labelsOf(s *cairn.Snapshot) map[string]string {
	m := map[string]string{
		labelSite: s.Site, labelEnv: s.Environment, labelHost: s.Host, labelVersion: s.Version,
		labelTime:     s.Time.UTC().Format(time.RFC3339Nano),
		labelFiles:    strconv.FormatInt(s.Files, 10),
		labelDirs:     strconv.FormatInt(s.Dirs, 10),
		labelBytes:    strconv.FormatInt(s.Bytes, 10),
		labelDuration: s.Duration.String(),
		labelSource:   s.Source,
	}
	if s.URL != "" {
		m[labelURL] = s.URL
	}
	if len(s.Warnings) > 0 {
		m[labelWarnings] = strings.Join(s.Warnings, "\n")
	}
	if len(s.Databases) > 0 {
		m[labelDBs] = databasesLabel(s.Databases)
	}
	if s.App != nil {
		m[labelApp] = strings.TrimSpace(s.App.Name + " " + s.App.Version)
	}
	return m
}

func snapshotFromLabels(id string, l map[string]string) (*cairn.Snapshot, bool) {
	if l[labelVersion] == "" {
		return nil, false
	}
	s := &cairn.Snapshot{ID: id, Site: l[labelSite], Environment: l[labelEnv], URL: l[labelURL],
		Host: l[labelHost], Version: l[labelVersion], Source: l[labelSource]}
	s.Time, _ = time.Parse(time.RFC3339Nano, l[labelTime])
	s.Files, _ = strconv.ParseInt(l[labelFiles], 10, 64)
	s.Dirs, _ = strconv.ParseInt(l[labelDirs], 10, 64)
	s.Bytes, _ = strconv.ParseInt(l[labelBytes], 10, 64)
	s.Duration, _ = time.ParseDuration(l[labelDuration])
	if w := l[labelWarnings]; w != "" {
		s.Warnings = strings.Split(w, "\n")
	}
	if d := l[labelDBs]; d != "" {
		s.Databases = databasesFromLabel(d)
	}
	if a := l[labelApp]; a != "" {
		name, version, _ := strings.Cut(a, " ")
		s.App = &cairn.AppInfo{Name: name, Version: version}
	}
	return s, true
}

// uploadProgress adapts kopia's upload callbacks to cairn.Progress and
// collects read errors.
type uploadProgress struct {
	upload.NullUploadProgress
	p cairn.Progress

	mu     sync.Mutex
	failed []string
}

// Enabled makes kopia walk the tree a second time to estimate its size;
// that is only worth it when someone watches a progress bar.
func (u *uploadProgress) Enabled() bool {
	v, ok := u.p.(interface{ Visible() bool })
	return !ok || v.Visible()
}

func (u *uploadProgress) EstimatedDataSize(files, b int64) { u.p.Total(files, b) }
func (u *uploadProgress) HashedBytes(n int64)              { u.p.Done(0, n) }
func (u *uploadProgress) CachedFile(_ string, size int64)  { u.p.Done(0, size) }
func (u *uploadProgress) FinishedFile(string, error)       { u.p.Done(1, 0) }
func (u *uploadProgress) Error(p string, err error, ignored bool) {
	if ignored {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	msg := err.Error()
	var pe *os.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	u.failed = append(u.failed, p+": "+msg)
}

func (u *uploadProgress) failures() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	sort.Strings(u.failed)
	return u.failed
}

// relativeInside returns those of paths (absolute, resolved) that lie
// strictly inside root, relative to it and slash-separated.
func relativeInside(root string, paths []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range paths {
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		out[filepath.ToSlash(rel)] = true
	}
	return out
}
