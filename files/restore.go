package files

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/pattern"
)

// Op is one kind of change restore makes.
type Op string

const (
	OpAdd    Op = "add"    // the target lacks the entry
	OpUpdate Op = "update" // the target's content differs
	OpMeta   Op = "meta"   // same content; mode or time differ
	OpDelete Op = "delete" // the snapshot lacks the entry
)

// Change is one planned or made change.
type Change struct {
	Op   Op
	Path string
	Size int64 // bytes written (add, update) or removed (delete)
	Dir  bool
}

// Options control a restore.
type Options struct {
	// Keep lists paths restore never writes nor deletes: the environment's
	// excludes and preserves. A link on the target matches a directory
	// pattern too.
	Keep pattern.Set
	// Delete removes what the target has and the snapshot lacks (except
	// what Keep matches). Without it such entries are left as they are
	// and counted in Stats.Extra.
	Delete bool
	// HardLinks are groups of paths (relative to the target's root, as
	// the snapshot's are) that name one file: the first of a group the
	// restore writes is copied, the others are made links to it, on
	// targets that can (see Linker).
	HardLinks [][]string
	// Protect lists paths (relative, slash-separated) that restore must
	// never write, replace nor remove, nor any directory above them:
	// cairn's own repository, keys and state when they lie inside the
	// target. A snapshot that would need one replaced fails the restore.
	Protect []string
	// ProtectIDs are the inodes of those paths, however reached (a bind
	// mount, a hard link): entries that are one are left as Protect's.
	ProtectIDs []FileID
	// NoCompare writes a file whose size is the snapshot's but whose
	// time is not without reading it first to compare: on another host,
	// reading it costs as much as writing it.
	NoCompare bool
	// DryRun reports the changes without making them.
	DryRun bool
	// Workers is how many files are copied at once (default 8).
	Workers int
	// Progress counts files and bytes of the snapshot as they are done.
	Progress cairn.Progress
	// OnChange is told of every change (may be nil). Calls are serialised.
	OnChange func(Change)
}

// Stats sums up a restore.
type Stats struct {
	Added, Updated, Meta, Deleted, Unchanged int64
	BytesWritten, BytesDeleted               int64
	// Patched counts the updated files the target patched (see
	// Patcher); PatchSent is what it sent of them, PatchSize their size.
	Patched, PatchSent, PatchSize int64
	// Extra counts entries the target has and the snapshot lacks, left
	// in place because Options.Delete was not set.
	Extra int64
	// Unsafe lists files whose setuid or setgid bit was not restored:
	// ownership is not restored, so the bit would lend the restoring
	// user's rights to whoever runs the file.
	Unsafe []string
}

// Restore makes the target path at (relative, "" = root) hold exactly the
// snapshot entry src: only differing files are written, each atomically;
// entries the snapshot lacks are removed unless opts.Keep matches them.
func Restore(ctx context.Context, src cairn.Node, dst Target, at string, opts Options) (Stats, error) {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Progress == nil {
		opts.Progress = cairn.NoProgress{}
	}
	if p := (&restorer{opts: opts}).protected(at); p == insideProtected || p == aboveProtected && !src.Mode().IsDir() {
		return Stats{}, fmt.Errorf("restore onto %s/%s: %w", dst, at, errProtectedPath)
	}
	g, gctx := errgroup.WithContext(ctx)
	r := &restorer{opts: opts, dst: dst, jobs: make(chan job, opts.Workers*4), ctx: gctx, slots: make(chan struct{}, walkers(opts.Workers))}
	r.planner, _ = src.(cairn.ReadPlanner)
	r.linker, _ = dst.(Linker)
	if r.linker != nil {
		r.group = map[string]int{}
		for i, g := range opts.HardLinks {
			for _, p := range g {
				r.group[p] = i
			}
		}
		r.leader = make([]string, len(opts.HardLinks))
	}
	for i := 0; i < opts.Workers; i++ {
		g.Go(r.worker)
	}
	g.Go(func() error {
		defer close(r.jobs)
		if src.Mode().IsDir() {
			cur, err := r.existing(at)
			if errors.Is(err, ErrNotDir) {
				cur, err = nil, nil // a link above: mkdirAll replaces it
			}
			if err != nil {
				return err
			}
			if err := r.dir(src, at, cur); err != nil {
				return err
			}
			r.qmu.Lock()
			defer r.qmu.Unlock()
			return r.flush()
		}
		cur, err := r.existing(at)
		if errors.Is(err, ErrNotDir) || err == nil && cur == nil && path.Dir(at) != "." && !r.opts.DryRun {
			// The directories above the one path restored are made
			// (a link among them replaced).
			if err = r.mkdirAll(path.Dir(at), 0o755); err == nil {
				cur, err = r.existing(at)
			}
		}
		if err != nil {
			return err
		}
		j, err := r.entry(src, at, cur)
		if err != nil || j == nil {
			return err
		}
		if err := r.queue([]job{*j}); err != nil {
			return err
		}
		r.qmu.Lock()
		defer r.qmu.Unlock()
		return r.flush()
	})
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return r.stats, ctx.Err()
		}
		return r.stats, err
	}
	if err := r.makeLinks(ctx); err != nil {
		return r.stats, err
	}
	// Directory times last: writing files inside changes them.
	if !opts.DryRun {
		for i := len(r.dirs) - 1; i >= 0; i-- {
			d := r.dirs[i]
			if err := dst.SetAttrs(ctx, d.rel, d.mode, d.mtime); err != nil {
				return r.stats, fmt.Errorf("set attributes of %s: %w", d.rel, err)
			}
		}
	}
	return r.stats, nil
}

type restorer struct {
	opts Options
	dst  Target
	jobs chan job
	ctx  context.Context

	planner cairn.ReadPlanner
	qmu     sync.Mutex // guards batch and the order of sends
	batch   []job      // copies waiting to be ordered by the planner

	// slots lets more directories be walked at once than the first:
	// reading a tree's directories (a repository's, decrypted and
	// decoded) and listing the target's takes as long as the copies
	// when few files changed.
	slots chan struct{}

	mu    sync.Mutex
	stats Stats
	dirs  []dirAttr

	// Hard links: group maps a path to its group in Options.HardLinks,
	// leader holds each group's path written first, links the paths to
	// link to it once every copy is done.
	linker Linker
	group  map[string]int
	leader []string
	links  []linkJob
}

type linkJob struct {
	node        cairn.Node
	rel, leader string
	cur         *Info
}

// walkers is how many directories are walked at once besides the first:
// three, or a quarter of the workers when there are more (a remote
// target's 32 get 8: each listing waits for round trips), and never more
// than the workers less one.
func walkers(workers int) int { return max(0, min(max(3, workers/4), workers-1)) }

// batchSize bounds the copies held back for ordering: enough for a site's
// tree to be read pack by pack, a few MB of memory.
const batchSize = 16384

type dirAttr struct {
	rel   string
	mode  fs.FileMode
	mtime time.Time
}

// job copies or compares one regular file in a worker.
type job struct {
	node    cairn.Node
	rel     string
	compare bool // same size, other time: compare content first
	exists  bool
}

func (r *restorer) report(c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch c.Op {
	case OpAdd:
		r.stats.Added++
		r.stats.BytesWritten += c.Size
	case OpUpdate:
		r.stats.Updated++
		r.stats.BytesWritten += c.Size
	case OpMeta:
		r.stats.Meta++
	case OpDelete:
		r.stats.Deleted++
		r.stats.BytesDeleted += c.Size
	}
	if r.opts.OnChange != nil {
		r.opts.OnChange(c)
	}
}

// existing describes the target's entry at rel, or returns nil if there
// is none.
func (r *restorer) existing(rel string) (*Info, error) {
	fi, err := r.dst.Lstat(r.ctx, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look at %s: %w", r.where(rel), hint(err))
	}
	return &fi, nil
}

// dir restores the directory n at rel, where the target has cur (nil:
// nothing), as its parent's listing said.
func (r *restorer) dir(n cairn.Node, rel string, cur *Info) error {
	present, err := r.openDir(n, rel, cur)
	if err != nil {
		return err
	}
	kids, err := n.Children(r.ctx)
	if err != nil {
		return err
	}
	inSnap := make(map[string]bool, len(kids))
	var pending []job // this directory's files to copy, queued after the prefetch hint
	var subdirs errgroup.Group
	for _, k := range kids {
		inSnap[k.Name()] = true
		p := path.Join(rel, k.Name())
		var curK *Info
		if fi, ok := present[k.Name()]; ok {
			curK = &fi
		}
		if r.kept(p, k.Mode(), curK) || r.protectedID(curK) {
			continue
		}
		switch r.protected(p) {
		case insideProtected:
			continue
		case aboveProtected:
			if !k.Mode().IsDir() {
				subdirs.Wait() //nolint:errcheck // this error is the one reported
				return fmt.Errorf("the snapshot has a file at %s, which holds cairn's own repository, keys or state: %w", r.where(p), errProtectedPath)
			}
		}
		if k.Mode().IsDir() && (curK == nil || curK.Mode.IsDir()) && !r.opts.DryRun { // a plan is listed in order
			select {
			case r.slots <- struct{}{}: // a walker is free: it takes the subdirectory
				subdirs.Go(func() error {
					defer func() { <-r.slots }()
					return r.dir(k, p, curK)
				})
				continue
			default:
			}
		}
		j, err := r.entry(k, p, curK)
		if err != nil {
			subdirs.Wait() //nolint:errcheck // this error is the one reported
			return err
		}
		if j != nil {
			pending = append(pending, *j)
		}
	}
	if err := subdirs.Wait(); err != nil {
		return err
	}
	if err := r.queue(pending); err != nil {
		return err
	}
	if err := r.removeExtra(rel, present, inSnap); err != nil {
		return err
	}
	r.mu.Lock()
	r.dirs = append(r.dirs, dirAttr{rel: rel, mode: n.Mode(), mtime: n.ModTime()})
	r.mu.Unlock()
	return nil
}

// openDir makes rel, where the target has cur, hold a directory
// (replacing whatever else is there, making it if missing) and lists what
// it holds.
func (r *restorer) openDir(n cairn.Node, rel string, cur *Info) (map[string]Info, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	if cur != nil && !cur.Mode.IsDir() {
		if err := r.remove(rel, *cur); err != nil {
			return nil, err
		}
		cur = nil
	}
	present := map[string]Info{}
	if cur == nil {
		if rel != "" {
			r.report(Change{Op: OpAdd, Path: rel, Dir: true})
		}
		if !r.opts.DryRun {
			if err := r.mkdirAll(rel, n.Mode()); err != nil {
				return nil, err
			}
		}
	} else {
		if cur.Mode&0o300 != 0o300 && !r.opts.DryRun && os.Geteuid() != 0 {
			// A directory the snapshot made read-only (0555) is made
			// writable while it is restored; the last pass gives it its
			// mode back. Root needs no such bit.
			r.dst.SetAttrs(r.ctx, rel, cur.Mode|0o700, cur.ModTime) //nolint:errcheck // if it fails, the write that needs it says why
		}
		list, err := r.dst.ReadDir(r.ctx, rel)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.where(rel), hint(err))
		}
		for _, fi := range list {
			present[fi.Name] = fi
		}
	}
	return present, nil
}

// removeExtra removes (or, without Options.Delete, counts) what the
// directory rel holds and the snapshot lacks, but for what is kept or
// protected; an interrupted restore's temporary files always go.
func (r *restorer) removeExtra(rel string, present map[string]Info, inSnap map[string]bool) error {
	names := make([]string, 0, len(present))
	for name := range present {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fi := present[name]
		p := path.Join(rel, name)
		if inSnap[name] {
			continue
		}
		if r.kept(p, fi.Mode, nil) || r.protected(p) != notProtected || r.protectedID(&fi) {
			continue
		}
		if IsTemp(name) && !fi.Mode.IsDir() {
			// An interrupted restore's: cairn's own, not the target's.
			if !r.opts.DryRun {
				if err := r.dst.RemoveAll(r.ctx, p); err != nil {
					return fmt.Errorf("remove leftover %s: %w", r.where(p), err)
				}
			}
			continue
		}
		if !r.opts.Delete {
			r.mu.Lock()
			r.stats.Extra++
			r.mu.Unlock()
			continue
		}
		if err := r.remove(p, fi); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll makes the directory rel and those above it that the target
// lacks; anything else in their place (a link, most often) is replaced.
func (r *restorer) mkdirAll(rel string, mode fs.FileMode) error {
	if rel == "" {
		return nil
	}
	cur, err := r.existing(rel)
	if err != nil && !errors.Is(err, ErrNotDir) {
		return err
	}
	if cur != nil && cur.Mode.IsDir() {
		return nil
	}
	if cur == nil { // missing, or something above is not a directory
		if parent := path.Dir(rel); parent != "." {
			if err := r.mkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		if err != nil {
			if cur, err = r.existing(rel); err != nil {
				return err
			}
		}
	}
	if cur != nil {
		if err := r.remove(rel, *cur); err != nil {
			return err
		}
	}
	if err := r.dst.Mkdir(r.ctx, rel, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory %s: %w", r.where(rel), hint(err))
	}
	return nil
}

// queue hands copies to the workers. With a planner they are first
// gathered into a batch and read in the order the planner prefers, but
// for the files the target can patch: those go at once, the longest
// jobs first (their work is mostly the target's, beside the others).
func (r *restorer) queue(jobs []job) error {
	if r.planner == nil || r.opts.DryRun {
		return r.send(jobs)
	}
	if _, ok := r.dst.(Patcher); ok {
		var now []job
		jobs = slices.DeleteFunc(slices.Clone(jobs), func(j job) bool {
			patch := j.exists && j.node.Size() >= PatchMin
			if patch {
				now = append(now, j)
			}
			return patch
		})
		if err := r.send(now); err != nil {
			return err
		}
	}
	r.qmu.Lock()
	defer r.qmu.Unlock()
	r.batch = append(r.batch, jobs...)
	if len(r.batch) >= batchSize {
		return r.flush()
	}
	return nil
}

// flush sends the batch in the planner's order. r.qmu is held.
func (r *restorer) flush() error {
	if len(r.batch) == 0 {
		return nil
	}
	nodes := make([]cairn.Node, len(r.batch))
	for i, j := range r.batch {
		nodes[i] = j.node
	}
	ordered := r.batch
	if order := r.planner.PlanReads(r.ctx, nodes); isPermutation(order, len(nodes)) {
		ordered = make([]job, len(order))
		for k, i := range order {
			ordered[k] = r.batch[i]
		}
	}
	r.batch = nil
	return r.send(ordered)
}

func isPermutation(order []int, n int) bool {
	if len(order) != n {
		return false
	}
	seen := make([]bool, n)
	for _, i := range order {
		if i < 0 || i >= n || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

func (r *restorer) send(jobs []job) error {
	for _, j := range jobs {
		select {
		case r.jobs <- j:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
	return nil
}

// entry restores one entry: it descends into a directory, makes a link,
// or returns the copy job a regular file needs (nil when it is unchanged).
func (r *restorer) entry(n cairn.Node, rel string, cur *Info) (*job, error) {
	switch mode := n.Mode(); {
	case mode.IsDir():
		return nil, r.dir(n, rel, cur)
	case mode&fs.ModeSymlink != 0:
		return nil, r.symlink(n, rel, cur)
	case mode.IsRegular():
		if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			r.mu.Lock()
			r.stats.Unsafe = append(r.stats.Unsafe, rel)
			r.mu.Unlock()
			n = safeMode{n}
			mode = n.Mode()
		}
		if cur != nil && !cur.Mode.IsRegular() {
			if err := r.remove(rel, *cur); err != nil {
				return nil, err
			}
			cur = nil
		}
		if r.linkLater(n, rel, cur) {
			return nil, nil
		}
		j := job{node: n, rel: rel, exists: cur != nil}
		// A file with other names (maybe outside the target) is never
		// changed in place: a new one takes its name. Nor is one whose
		// names are not known (Nlink 0: SFTP does not tell).
		inPlace := cur != nil && cur.Nlink == 1
		if cur != nil && cur.Size == n.Size() {
			if cur.ModTime.Equal(n.ModTime()) && (inPlace || cur.Mode&modeBits == mode&modeBits) {
				if cur.Mode&modeBits != mode&modeBits {
					r.report(Change{Op: OpMeta, Path: rel})
					if !r.opts.DryRun {
						if err := r.dst.SetAttrs(r.ctx, rel, mode, n.ModTime()); err != nil {
							return nil, fmt.Errorf("set attributes of %s: %w", r.where(rel), err)
						}
					}
				} else {
					r.mu.Lock()
					r.stats.Unchanged++
					r.mu.Unlock()
				}
				r.opts.Progress.Done(1, n.Size())
				return nil, nil
			}
			j.compare = inPlace && !r.opts.NoCompare
		}
		return &j, nil
	}
	return nil, nil // devices, sockets and pipes are not restored
}

func (r *restorer) symlink(n cairn.Node, rel string, cur *Info) error {
	target, err := n.Readlink(r.ctx)
	if err != nil {
		return err
	}
	if cur != nil && cur.Mode&fs.ModeSymlink != 0 {
		if old, err := r.dst.Readlink(r.ctx, rel); err == nil && old == target {
			r.mu.Lock()
			r.stats.Unchanged++
			r.mu.Unlock()
			return nil
		}
	}
	if cur != nil && cur.Mode.IsDir() {
		if err := r.remove(rel, *cur); err != nil {
			return err
		}
		cur = nil
	}
	op := OpAdd
	if cur != nil {
		op = OpUpdate
	}
	r.report(Change{Op: op, Path: rel})
	if r.opts.DryRun {
		return nil
	}
	if err := r.dst.Symlink(r.ctx, target, rel); err != nil {
		return fmt.Errorf("create link %s: %w", r.where(rel), hint(err))
	}
	return nil
}

func (r *restorer) remove(rel string, fi Info) error {
	if p := r.protected(rel); p != notProtected || r.protectedID(&fi) {
		return fmt.Errorf("refusing to remove %s: %w", r.where(rel), errProtectedPath)
	}
	r.report(Change{Op: OpDelete, Path: rel, Size: fi.Size, Dir: fi.Mode.IsDir()})
	if r.opts.DryRun {
		return nil
	}
	if err := r.dst.RemoveAll(r.ctx, rel); err != nil {
		return fmt.Errorf("remove %s: %w", r.where(rel), err)
	}
	return nil
}

func (r *restorer) worker() error {
	for j := range r.jobs {
		if err := r.copy(j); err != nil {
			return err
		}
	}
	return nil
}

func (r *restorer) copy(j job) error {
	n := j.node
	if done, err := r.patch(j); done || err != nil {
		return err
	}
	if j.compare {
		same, err := r.sameContent(j)
		if err != nil {
			return err
		}
		if same {
			r.report(Change{Op: OpMeta, Path: j.rel})
			if !r.opts.DryRun {
				if err := r.dst.SetAttrs(r.ctx, j.rel, n.Mode(), n.ModTime()); err != nil {
					return fmt.Errorf("set attributes of %s: %w", r.where(j.rel), err)
				}
			}
			r.opts.Progress.Done(1, n.Size())
			return nil
		}
	}
	op := OpAdd
	if j.exists {
		op = OpUpdate
	}
	r.report(Change{Op: op, Path: j.rel, Size: n.Size()})
	if r.opts.DryRun {
		r.opts.Progress.Done(1, n.Size())
		return nil
	}
	rc, err := n.Open(r.ctx)
	if err != nil {
		return fmt.Errorf("read %s from the repository: %w", j.rel, err)
	}
	defer rc.Close()
	pr := &progressReader{r: rc, p: r.opts.Progress}
	if err := r.dst.WriteFile(r.ctx, j.rel, pr, n.Mode(), n.ModTime()); err != nil {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		return fmt.Errorf("write %s: %w", r.where(j.rel), hint(err))
	}
	r.opts.Progress.Done(1, 0)
	return nil
}

// patch rewrites the file of j by sending only what differs from the
// target's, where the target can (see Patcher); done is false when it did
// not, for the file to be written whole (or compared first).
func (r *restorer) patch(j job) (done bool, err error) {
	n := j.node
	p, ok := r.dst.(Patcher)
	if !ok || !j.exists || r.opts.DryRun || n.Size() < PatchMin {
		return false, nil
	}
	rc, err := n.Open(r.ctx)
	if err != nil {
		return false, fmt.Errorf("read %s from the repository: %w", j.rel, err)
	}
	defer rc.Close()
	rs, ok := rc.(io.ReadSeeker)
	if !ok {
		return false, nil
	}
	sent, same, err := p.Patch(r.ctx, j.rel, rs, n.Size(), n.Mode(), n.ModTime())
	switch {
	case r.ctx.Err() != nil:
		return true, r.ctx.Err()
	case err != nil:
		return false, nil // written whole, which says what is wrong if anything is
	case same:
		r.report(Change{Op: OpMeta, Path: j.rel})
	default:
		r.report(Change{Op: OpUpdate, Path: j.rel, Size: n.Size()})
		r.mu.Lock()
		r.stats.Patched++
		r.stats.PatchSent += sent
		r.stats.PatchSize += n.Size()
		r.mu.Unlock()
	}
	r.opts.Progress.Done(1, n.Size())
	return true, nil
}

// sameContent compares the snapshot's file with the target's, byte by byte.
func (r *restorer) sameContent(j job) (bool, error) {
	a, err := j.node.Open(r.ctx)
	if err != nil {
		return false, fmt.Errorf("read %s from the repository: %w", j.rel, err)
	}
	defer a.Close()
	b, err := r.dst.Open(r.ctx, j.rel)
	if err != nil {
		return false, nil // unreadable: rewrite it
	}
	defer b.Close()
	return equalReaders(a, b)
}

func equalReaders(a, b io.Reader) (bool, error) {
	ba, bb := bufio.NewReaderSize(a, 128<<10), bufio.NewReaderSize(b, 128<<10)
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(ba, bufA)
		nb, eb := io.ReadFull(bb, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		aDone := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bDone := eb == io.EOF || eb == io.ErrUnexpectedEOF
		if ea != nil && !aDone {
			return false, ea
		}
		if eb != nil && !bDone {
			return false, nil
		}
		if aDone || bDone {
			return aDone && bDone, nil
		}
	}
}

func (r *restorer) where(rel string) string {
	if rel == "" {
		return r.dst.String()
	}
	return r.dst.String() + "/" + rel
}

// hint adds advice to errors a user can fix.
func hint(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w. Try: free space on the target and run the same command again; restored files are kept and the rest is resumed", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w. Try: run cairn as a user who can write the target", err)
	case errors.Is(err, ErrNotDir):
		return fmt.Errorf("%w: something replaced a directory of the target while it was restored. Try: check who writes there, and run the same command again (a link found then is replaced)", err)
	}
	return err
}

type progressReader struct {
	r io.Reader
	p cairn.Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.p.Done(0, int64(n))
	return n, err
}
