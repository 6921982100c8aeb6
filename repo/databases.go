package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/virtualfs"
	"github.com/kopia/kopia/snapshot"

	"github.com/cairn-backup/cairn"
)

// A snapshot's tree (layout 2):
//
//	files/                  the environment's files
//	databases/NAME.sql/     one SQL dump per database, in chunks cut by
//	                        content (00000000, 00000001, …: read in order)
//	databases/NAME.tables   its per-table stats (JSON)
//	app.json                the application found in the files
//
// Snapshots without labelLayout (layout 1) hold the files at the root.
const (
	layout      = "2"
	filesDir    = "files"
	dbDir       = "databases"
	appFile     = "app.json"
	dumpExt     = ".sql"
	tablesExt   = ".tables"
	labelLayout = "cairn:layout"
	labelDBs    = "cairn:databases"
	labelApp    = "cairn:app"
	// dumpSplitter leaves the chunks cairn cut (see cdc.go) whole.
	dumpSplitter = "FIXED-8M"
)

// errNotRead ends a dump kopia never asked for.
var errNotRead = errors.New("dump not read")

// dumpJob streams one database's dump into the snapshot. The dump starts
// when kopia first reads it, through a pipe: nothing is written to disk
// and memory holds one buffer. The tables file waits for the dump to end.
type dumpJob struct {
	ctx  context.Context
	db   cairn.Database
	name string // entry name, unique in the snapshot

	reuse  []*snapshot.DirEntry // for a Reused database: its stored chunks
	tail   func(context.Context, io.Writer) ([]cairn.TableStat, error)
	parted cairn.PartedDumper // for a database that dumps in parts (not Reused)

	once   sync.Once
	chunks chan chunk    // cut chunks, in order; closed when the dump ends
	abort  chan struct{} // closed when kopia stops reading
	aborts sync.Once
	done   chan struct{}
	bytes  atomic.Int64
	stats  []cairn.TableStat // set before done closes
	err    error             // set before done closes
}

func (r *Repo) newDumpJobs(ctx context.Context, dbs []cairn.Database) ([]*dumpJob, error) {
	used := map[string]bool{}
	var jobs []*dumpJob
	for _, db := range dbs {
		name := db.Name()
		for i := 2; used[name]; i++ {
			name = db.Name() + "-" + strconv.Itoa(i)
		}
		used[name] = true
		j := &dumpJob{ctx: ctx, db: db, name: name, done: make(chan struct{}),
			chunks: make(chan chunk, chunkQueue), abort: make(chan struct{}), tail: db.Dump}
		if pd, ok := db.(cairn.PartedDumper); ok {
			j.parted = pd
		}
		if re, ok := db.(Reused); ok {
			var err error
			if j.reuse, err = r.dumpEntries(ctx, re.From); err != nil {
				return nil, fmt.Errorf("database %s: the stored dump to start from: %w", name, err)
			}
			j.tail = re.Tail
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// chunkQueue is how many cut chunks may wait for kopia: the dump runs on
// while kopia is busy with earlier chunks.
const chunkQueue = 8

// start runs the dump once: its output is cut into chunks (see cdc.go)
// as it comes, and queued for kopia.
func (j *dumpJob) start() {
	j.once.Do(func() {
		go func() {
			stats, err := j.run()
			if err != nil {
				err = fmt.Errorf("dump database %s (%s): %w", j.name, j.db, err)
			}
			j.stats, j.err = stats, err
			close(j.chunks)
			close(j.done)
		}()
	})
}

// run runs the dump, into one stream of chunks or, for a database that
// dumps in parts, into one per part, all queued as they come. A part's
// chunks are named for it (pNN-00000000, …), so that in the snapshot,
// whose directories list entries by name, part follows part.
func (j *dumpJob) run() ([]cairn.TableStat, error) {
	if j.parted == nil || j.reuse != nil {
		cw := &chunkWriter{j: j}
		stats, err := j.tail(j.ctx, cw)
		if err == nil {
			err = cw.flush()
		}
		return stats, err
	}
	var cws []*chunkWriter
	stats, err := j.parted.DumpParts(j.ctx, func(n int) []io.Writer {
		out := make([]io.Writer, n)
		for i := range out {
			cw := &chunkWriter{j: j}
			if n > 1 {
				cw.part = i + 1
			}
			cws, out[i] = append(cws, cw), cw
		}
		return out
	})
	for _, cw := range cws {
		if err == nil {
			err = cw.flush()
		}
	}
	return stats, err
}

// stop ends a dump that kopia stopped reading (or never read).
func (j *dumpJob) stop() {
	j.aborts.Do(func() { close(j.abort) })
	j.once.Do(func() {
		j.err = errNotRead
		close(j.chunks)
		close(j.done)
	})
}

// chunkWriter cuts what the dump writes into chunks and queues them.
type chunkWriter struct {
	j    *dumpJob
	cdc  cdc
	cur  []byte
	part int // of a dump in parts, from 1 (0: the one stream)
	seq  int // chunks of the part so far
}

// chunk is a cut chunk; name is "" where the stream's order names it.
type chunk struct {
	name string
	data []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.j.bytes.Add(int64(n))
	for len(p) > 0 {
		if w.cur == nil {
			w.cur = chunkBuffers.Get().([]byte)[:0]
		}
		k := min(len(p), cap(w.cur)-len(w.cur))
		w.cur, p = append(w.cur, p[:k]...), p[k:]
		for {
			cut := w.cdc.cut(w.cur)
			if cut == 0 {
				break
			}
			next := chunkBuffers.Get().([]byte)[:len(w.cur)-cut]
			copy(next, w.cur[cut:])
			if err := w.send(w.cur[:cut]); err != nil {
				return 0, err
			}
			w.cur = next
		}
	}
	return n, nil
}

func (w *chunkWriter) send(data []byte) error {
	c := chunk{data: data}
	if w.part > 0 {
		c.name = fmt.Sprintf("p%02d-%08d", w.part, w.seq)
		w.seq++
	}
	select {
	case w.j.chunks <- c:
		return nil
	case <-w.j.abort:
		return errNotRead
	case <-w.j.ctx.Done():
		return w.j.ctx.Err()
	}
}

// flush queues what is left after the last cut.
func (w *chunkWriter) flush() error {
	if len(w.cur) == 0 {
		return nil
	}
	err := w.send(w.cur)
	w.cur = nil
	return err
}

// wait returns the dump's result once it has ended.
func (j *dumpJob) wait() error {
	select {
	case <-j.done:
		return j.err
	case <-j.ctx.Done():
		return j.ctx.Err()
	}
}

func (j *dumpJob) info() cairn.DatabaseInfo {
	in := cairn.DatabaseInfo{Name: j.name, Engine: j.db.Engine(), DSN: j.db.String(), Bytes: j.bytes.Load(), Tables: len(j.stats)}
	for _, s := range j.stats {
		in.Rows += s.Rows
	}
	return in
}

// chunks hands the dump's chunks to kopia as files, in order: kopia then
// hashes, compresses and uploads them in parallel. The dump starts at the
// first call; a Reused database's stored chunks come first, unread.
type chunks struct {
	j *dumpJob
	t time.Time
	n int // chunks so far
}

func (c *chunks) name() string { c.n++; return fmt.Sprintf("%08d", c.n-1) }

// readSize bounds the spare room of a chunk buffer past cdcMax.
const readSize = 256 << 10

func (c *chunks) Next(ctx context.Context) (fs.Entry, error) {
	if c.n < len(c.j.reuse) {
		de := c.j.reuse[c.n]
		c.j.bytes.Add(de.FileSize)
		return reusedChunk{de: de, name: c.name(), t: c.t}, nil
	}
	c.j.start()
	var next chunk
	var ok bool
	select {
	case next, ok = <-c.j.chunks:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !ok {
		<-c.j.done
		if c.j.err != nil {
			return nil, c.j.err
		}
		return nil, nil
	}
	name := next.name
	if name == "" {
		name = c.name()
	}
	return &streamFile{name: name, t: c.t, size: int64(len(next.data)), r: &chunkReader{bytes.NewReader(next.data), next.data}}, nil
}

// chunkBuffers recycles the buffers chunks are cut in.
var chunkBuffers = sync.Pool{New: func() any { return make([]byte, 0, cdcMax+readSize) }}

// chunkReader gives its buffer back once kopia has read it.
type chunkReader struct {
	*bytes.Reader
	buf []byte
}

func (r *chunkReader) Close() error {
	if r.buf != nil {
		chunkBuffers.Put(r.buf[:0]) //nolint:staticcheck // a slice header is small
		r.buf = nil
	}
	return nil
}

// Close stops a dump that kopia stopped reading.
func (c *chunks) Close() { c.j.stop() }

// tablesReader serves the dump's table stats once the dump has ended.
type tablesReader struct {
	j *dumpJob
	r *bytes.Reader
}

func (t *tablesReader) Read(p []byte) (int, error) {
	if t.r == nil {
		if err := t.j.wait(); err != nil {
			return 0, err
		}
		b, err := json.Marshal(tablesFile{Tables: toTableJSON(t.j.stats)})
		if err != nil {
			return 0, err
		}
		t.r = bytes.NewReader(b)
	}
	return t.r.Read(p)
}

func (t *tablesReader) Close() error { return nil }

// tablesFile is the content of databases/NAME.tables.
type tablesFile struct {
	Tables []tableJSON `json:"tables"`
}

type tableJSON struct {
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum,omitempty"`
}

func toTableJSON(stats []cairn.TableStat) []tableJSON {
	out := make([]tableJSON, len(stats))
	for i, s := range stats {
		out[i] = tableJSON{s.Name, s.Rows, s.Checksum}
	}
	return out
}

// snapshotRoot builds layout 2's root around the files directory. The
// databases come first, so their dumps start before the files are walked:
// data and files are then as close to one moment as they can be.
func snapshotRoot(files fs.Directory, jobs []*dumpJob, app *cairn.AppInfo, t time.Time) (fs.Directory, error) {
	var entries []fs.Entry
	if len(jobs) > 0 {
		var dbs []fs.Entry
		for _, j := range jobs {
			dbs = append(dbs, virtualfs.NewStreamingDirectory(j.name+dumpExt, &chunks{j: j, t: t}))
		}
		for _, j := range jobs { // after every dump: they wait for theirs
			dbs = append(dbs, &streamFile{name: j.name + tablesExt, t: t, r: &tablesReader{j: j}})
		}
		entries = append(entries, virtualfs.NewStaticDirectory(dbDir, dbs))
	}
	if app != nil {
		b, err := json.Marshal(appJSON{Name: app.Name, Version: app.Version, Components: app.Components})
		if err != nil {
			return nil, err
		}
		entries = append(entries, &streamFile{name: appFile, t: t, r: io.NopCloser(bytes.NewReader(b))})
	}
	if files != nil {
		entries = append(entries, renamed{files, filesDir})
	}
	return virtualfs.NewStaticDirectory("", entries), nil
}

// streamFile is a snapshot entry whose content is produced while kopia
// reads it, once. It is a File rather than kopia's StreamingFile so that
// kopia hashes, compresses and encrypts one chunk while the next is read,
// and checkpoints long dumps like long files. Its size is unknown (0)
// until read, so it never matches an earlier snapshot's entry.
type streamFile struct {
	name string
	t    time.Time
	size int64 // 0 when unknown
	r    io.ReadCloser
	used atomic.Bool
}

var _ fs.File = (*streamFile)(nil)

func (f *streamFile) Name() string                { return f.name }
func (f *streamFile) Size() int64                 { return f.size }
func (f *streamFile) Mode() os.FileMode           { return 0o600 }
func (f *streamFile) ModTime() time.Time          { return f.t }
func (f *streamFile) IsDir() bool                 { return false }
func (f *streamFile) Sys() any                    { return nil }
func (f *streamFile) Owner() fs.OwnerInfo         { return fs.OwnerInfo{} }
func (f *streamFile) Device() fs.DeviceInfo       { return fs.DeviceInfo{} }
func (f *streamFile) LocalFilesystemPath() string { return "" }
func (f *streamFile) Close()                      {}
func (f *streamFile) Open(context.Context) (fs.Reader, error) {
	if f.used.Swap(true) {
		return nil, fmt.Errorf("%s: can only be read once", f.name)
	}
	return streamReader{f}, nil
}

type streamReader struct{ f *streamFile }

func (r streamReader) Read(p []byte) (int, error) { return r.f.r.Read(p) }
func (r streamReader) Close() error               { return r.f.r.Close() }
func (r streamReader) Entry() (fs.Entry, error)   { return r.f, nil }
func (r streamReader) Seek(off int64, whence int) (int64, error) {
	if off == 0 && whence == io.SeekStart {
		return 0, nil
	}
	return 0, fmt.Errorf("%s: a stream cannot seek", r.f.name)
}

// renamed gives a directory another name in the snapshot.
type renamed struct {
	fs.Directory
	name string
}

func (r renamed) Name() string { return r.name }

type appJSON struct {
	Name       string            `json:"name"`
	Version    string            `json:"version,omitempty"`
	Components map[string]string `json:"components,omitempty"`
}

// dbLabel is one database in the labelDBs label.
type dbLabel struct {
	Name   string `json:"name"`
	Engine string `json:"engine"`
	DSN    string `json:"dsn"`
	Bytes  int64  `json:"bytes"`
	Tables int    `json:"tables"`
	Rows   int64  `json:"rows"`
}

func databasesLabel(dbs []cairn.DatabaseInfo) string {
	out := make([]dbLabel, len(dbs))
	for i, d := range dbs {
		out[i] = dbLabel(d)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func databasesFromLabel(s string) []cairn.DatabaseInfo {
	var in []dbLabel
	if json.Unmarshal([]byte(s), &in) != nil {
		return nil
	}
	out := make([]cairn.DatabaseInfo, len(in))
	for i, d := range in {
		out[i] = cairn.DatabaseInfo(d)
	}
	return out
}

// OpenDump streams one of the snapshot's database dumps: its chunks, in
// order.
func (r *Repo) OpenDump(ctx context.Context, s *cairn.Snapshot, name string) (io.ReadCloser, error) {
	d, err := r.treeFile(ctx, s, path.Join(dbDir, name+dumpExt))
	if err != nil {
		return nil, err
	}
	parts, err := d.Children(ctx)
	if err != nil {
		return nil, err
	}
	return &concat{ctx: ctx, parts: parts}, nil
}

// OpenDumpParts streams one of the snapshot's database dumps by its parts
// (see cairn.PartedDumper), each part's chunks in order: one reader for a
// dump taken in one stream.
func (r *Repo) OpenDumpParts(ctx context.Context, s *cairn.Snapshot, name string) ([]io.ReadCloser, error) {
	d, err := r.treeFile(ctx, s, path.Join(dbDir, name+dumpExt))
	if err != nil {
		return nil, err
	}
	kids, err := d.Children(ctx)
	if err != nil {
		return nil, err
	}
	var out []io.ReadCloser
	for len(kids) > 0 {
		part, _, _ := strings.Cut(kids[0].Name(), "-")
		n := 1
		for n < len(kids) && strings.HasPrefix(kids[n].Name(), "p") && strings.HasPrefix(kids[n].Name(), part+"-") {
			n++
		}
		if !strings.HasPrefix(kids[0].Name(), "p") {
			n = len(kids) // one stream: 00000000, 00000001, …
		}
		out = append(out, &concat{ctx: ctx, parts: kids[:n]})
		kids = kids[n:]
	}
	return out, nil
}

// concat reads files one after the other.
type concat struct {
	ctx   context.Context
	parts []cairn.Node
	cur   io.ReadCloser
}

func (c *concat) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.parts) == 0 {
				return 0, io.EOF
			}
			rc, err := c.parts[0].Open(c.ctx)
			if err != nil {
				return 0, err
			}
			c.cur, c.parts = rc, c.parts[1:]
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			c.cur.Close()
			c.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *concat) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}

// Tables returns the table stats recorded for one of the snapshot's
// databases.
func (r *Repo) Tables(ctx context.Context, s *cairn.Snapshot, name string) ([]cairn.TableStat, error) {
	var tf tablesFile
	if err := r.readJSON(ctx, s, path.Join(dbDir, name+tablesExt), &tf); err != nil {
		return nil, err
	}
	out := make([]cairn.TableStat, len(tf.Tables))
	for i, t := range tf.Tables {
		out[i] = cairn.TableStat{Name: t.Name, Rows: t.Rows, Checksum: t.Checksum}
	}
	return out, nil
}

// App returns the application recorded with the snapshot, or nil.
func (r *Repo) App(ctx context.Context, s *cairn.Snapshot) (*cairn.AppInfo, error) {
	if s.App == nil {
		return nil, nil
	}
	var a appJSON
	if err := r.readJSON(ctx, s, appFile, &a); err != nil {
		return nil, err
	}
	return &cairn.AppInfo{Name: a.Name, Version: a.Version, Components: a.Components}, nil
}

func (r *Repo) readJSON(ctx context.Context, s *cairn.Snapshot, p string, v any) error {
	f, err := r.treeFile(ctx, s, p)
	if err != nil {
		return err
	}
	rc, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("snapshot %s: read %s: %w", s.ShortID(), p, err)
	}
	return nil
}

// treeFile finds an entry under the snapshot's root (not its files).
func (r *Repo) treeFile(ctx context.Context, s *cairn.Snapshot, p string) (cairn.Node, error) {
	n, _, err := r.root(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(p, "/") {
		kids, err := n.Children(ctx)
		if err != nil {
			return nil, err
		}
		var next cairn.Node
		for _, k := range kids {
			if k.Name() == part {
				next = k
			}
		}
		if next == nil {
			return nil, fmt.Errorf("snapshot %s has no %s: %w", s.ShortID(), p, cairn.ErrNotFound)
		}
		n = next
	}
	return n, nil
}
