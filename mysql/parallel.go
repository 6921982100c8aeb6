package mysql

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"
)

// A parallel dump runs one dump tool per connection, each on some of the
// tables, all inside one consistent snapshot, as mydumper does: a control
// connection stops commits for a moment (MariaDB's BACKUP STAGE
// BLOCK_COMMIT, else FLUSH TABLES WITH READ LOCK), the tables are listed,
// every tool starts its transaction (--single-transaction's START
// TRANSACTION WITH CONSISTENT SNAPSHOT), and commits resume: every tool's
// snapshot holds the same transactions. The site's writes wait for that
// moment only (the tools' start, some tens of milliseconds); its reads
// never do.
//
// The dump is the parts one after the other: the tables spread over the
// parts by size, the views, routines and events in the last (a view is
// made once every table is). Without the right to stop commits (RELOAD),
// with a lock not had within lockWait (a long statement in the way), or
// with too little to share, the dump is the single tool's, as before.

// DumpConnections is how many connections a dump of a database reads on
// by default (measured on 2 cores, a 400 MB database of four tables:
// see bench/README.md).
var DumpConnections = 2

// parallelMin is the least a database holds (data and indexes) for its
// dump to be shared between connections, unless its DSN says how many
// (?connections=).
var parallelMin int64 = 32 << 20

// startWait bounds the wait, commits stopped, for every tool to start its
// transaction.
var startWait = 20 * time.Second

// DumpParts is Dump on up to conns connections at once (see above):
// parts(n) returns the n writers the parts go to, once; the dump is their
// outputs one after the other. One writer is asked for when the dump is
// not shared. why says why it was not, "" when it was.
func DumpParts(ctx context.Context, c Config, conns int, parts func(n int) []io.Writer) (why string, err error) {
	if conns < 2 {
		return "one connection asked for", Dump(ctx, c, parts(1)[0])
	}
	// Until the parts are asked for, any trouble is the single tool's to
	// say (its messages have the advice: a wrong password, a database
	// that does not exist).
	db, err := c.open()
	if err != nil {
		return "the server could not be reached for a parallel dump", Dump(ctx, c, parts(1)[0])
	}
	defer db.Close()
	ctl, err := db.Conn(ctx)
	if err != nil {
		return "the server could not be reached for a parallel dump", Dump(ctx, c, parts(1)[0])
	}
	defer ctl.Close()
	binary := binarySafe(ctx, c)
	release, why := stopCommits(ctx, ctl)
	if why != "" {
		return why, Dump(ctx, c, parts(1)[0])
	}
	least := parallelMin
	if c.Connections > 0 {
		least = 0
	}
	groups, views, why, err := shareTables(ctx, ctl, conns, least)
	if err != nil || why != "" {
		release()
		if err != nil {
			why = "its tables could not be listed: " + err.Error()
		}
		return why, Dump(ctx, c, parts(1)[0])
	}
	groups[len(groups)-1] = append(groups[len(groups)-1], views...)
	ws := parts(len(groups))
	tctx, stopTools := context.WithCancel(ctx)
	defer stopTools()
	g, gctx := errgroup.WithContext(tctx)
	gates := make([]*gate, len(groups))
	for i, tables := range groups {
		gates[i] = newGate(ws[i])
		last := i == len(groups)-1
		g.Go(func() error {
			err := dumpTool(gctx, c, gates[i], tables, last, binary)
			gates[i].end()
			if err == nil && gates[i].flowed() {
				// Its part is out whole (see cairn.PartedDumper).
				if cl, ok := ws[i].(io.Closer); ok {
					err = cl.Close()
				}
			}
			return err
		})
	}
	// Commits resume once every tool has begun its snapshot, or one has
	// ended (its error ends them all), or the wait is over.
	wctx, stopWait := context.WithTimeout(gctx, startWait)
	for _, gt := range gates {
		select {
		case <-gt.started:
		case <-gt.ended:
		case <-wctx.Done():
		}
	}
	stopWait()
	started := true
	for _, gt := range gates {
		started = started && gt.hasStarted()
	}
	release()
	if !started {
		// Nothing reached the parts: the dump is the single tool's.
		for _, gt := range gates {
			gt.fail(errNotStarted)
		}
		stopTools()
		err := g.Wait()
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil && !errors.Is(err, errNotStarted) && !errors.Is(err, context.Canceled):
			return "", err // a tool's own failure (it would fail alone too)
		}
		return "the dump tools did not all begin their snapshots within " + startWait.String(), Dump(ctx, c, ws[0])
	}
	for _, gt := range gates {
		gt.open()
	}
	return "", g.Wait()
}

var errNotStarted = errors.New("the dump tools did not all start their snapshot in time")

// stopCommits stops commits on the server, for the tools to start their
// snapshots on the same transactions; release lets them go on. why says
// why they could not be stopped (no right to, the lock not had in time).
func stopCommits(ctx context.Context, ctl *sql.Conn) (release func(), why string) {
	var version string
	if err := ctl.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, "the server's version is unknown: " + err.Error()
	}
	// The site's statements wait behind the lock while it is being had:
	// not for long.
	if _, err := ctl.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+strconv.Itoa(int(lockWait.Seconds()))); err != nil {
		return nil, err.Error()
	}
	stmts, undo := []string{"FLUSH TABLES WITH READ LOCK"}, "UNLOCK TABLES"
	if mariaAtLeast(version, 10, 4) {
		stmts, undo = []string{"BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"}, "BACKUP STAGE END"
	}
	for _, s := range stmts {
		if _, err := ctl.ExecContext(ctx, s); err != nil {
			ctl.ExecContext(context.WithoutCancel(ctx), undo) //nolint:errcheck
			var me *driver.MySQLError
			if errors.As(err, &me) && (me.Number == 1227 || me.Number == 1045) {
				return nil, "the user may not stop commits for a consistent parallel dump (it needs the RELOAD privilege)"
			}
			return nil, fmt.Sprintf("commits could not be stopped for a parallel dump (%s): %v", s, err)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() { ctl.ExecContext(context.WithoutCancel(ctx), undo) }) //nolint:errcheck
	}, ""
}

// lockWait bounds the wait for the lock that stops commits.
const lockWait = 5 * time.Second

// mariaAtLeast tells whether version is MariaDB's major.minor or later.
func mariaAtLeast(version string, major, minor int) bool {
	if !strings.Contains(version, "MariaDB") {
		return false
	}
	f := strings.FieldsFunc(version, func(r rune) bool { return r == '.' || r == '-' })
	if len(f) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(f[0])
	mi, err2 := strconv.Atoi(f[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

// shareTables spreads the database's tables over up to n groups by size
// (largest first, each to the lightest group), and lists its views; why
// says why the dump is not to be shared (one table, or less than least
// bytes in all).
func shareTables(ctx context.Context, ctl *sql.Conn, n int, least int64) (groups [][]string, views []string, why string, err error) {
	rows, err := ctl.QueryContext(ctx, "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
	if err != nil {
		return nil, nil, "", err
	}
	defer rows.Close()
	type table struct {
		name string
		size int64
	}
	var tables []table
	var total int64
	for rows.Next() {
		var t table
		var kind string
		if err := rows.Scan(&t.name, &kind, &t.size); err != nil {
			return nil, nil, "", err
		}
		if kind == "VIEW" {
			views = append(views, t.name)
			continue
		}
		tables = append(tables, t)
		total += t.size
	}
	if err := rows.Err(); err != nil {
		return nil, nil, "", err
	}
	if len(tables) < 2 || total < least {
		return nil, nil, "too little to share between connections", nil
	}
	slices.SortStableFunc(tables, func(a, b table) int { return int(min(max(b.size-a.size, -1), 1)) })
	n = min(n, len(tables))
	groups = make([][]string, n)
	load := make([]int64, n)
	for _, t := range tables {
		i := slices.Index(load, slices.Min(load))
		groups[i] = append(groups[i], t.name)
		load[i] += t.size + 1
	}
	return groups, views, "", nil
}

// gate holds a part's output until every part's tool has begun its
// snapshot: then the lock is released, and the part's output flows.
// Until then what the tool writes is kept (its header and first table's
// structure: some kilobytes) and it waits once its snapshot has begun.
type gate struct {
	w       io.Writer
	mu      sync.Mutex
	held    bytes.Buffer
	started chan struct{} // closed when the tool's first table begins
	ended   chan struct{} // closed when the tool has ended
	opened  chan struct{} // closed when the output may flow
	err     error         // what Write fails with once failed
	once    [3]sync.Once
}

func newGate(w io.Writer) *gate {
	return &gate{w: w, started: make(chan struct{}), ended: make(chan struct{}), opened: make(chan struct{})}
}

// structureMarker begins the tool's first table or view: it has begun its
// snapshot (--single-transaction does before any table).
var structureMarker = []byte(" structure for ")

func (g *gate) Write(p []byte) (int, error) {
	select {
	case <-g.opened:
		g.mu.Lock()
		err := g.err
		g.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return g.w.Write(p)
	default:
	}
	g.mu.Lock()
	g.held.Write(p)
	if bytes.Contains(g.held.Bytes(), structureMarker) {
		g.once[0].Do(func() { close(g.started) })
	}
	g.mu.Unlock()
	if g.hasStarted() {
		<-g.opened
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.err != nil {
			return 0, g.err
		}
		if g.held.Len() > 0 {
			if _, err := g.w.Write(g.held.Bytes()); err != nil {
				g.err = err
				return 0, err
			}
			g.held.Reset()
		}
	}
	return len(p), nil
}

func (g *gate) hasStarted() bool {
	select {
	case <-g.started:
		return true
	default:
		return false
	}
}

// flowed tells whether the output was let flow and nothing failed it:
// once the tool has ended, all it wrote is out.
func (g *gate) flowed() bool {
	select {
	case <-g.opened:
	default:
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err == nil && g.held.Len() == 0
}

// open lets the output flow.
func (g *gate) open() { g.once[1].Do(func() { close(g.opened) }) }

// fail makes the tool's writes fail with err (its dump is abandoned).
func (g *gate) fail(err error) {
	g.mu.Lock()
	g.err = err
	g.mu.Unlock()
	g.open()
}

// end marks the tool ended; what it wrote is out once the gate opened.
func (g *gate) end() { g.once[2].Do(func() { close(g.ended) }) }

// loadParts loads a dump's parts into c at once, each on two connections
// of its own; the last part's views are made once every other part is in
// (they need its tables). Any part's failure ends them all.
func loadParts(ctx context.Context, c Config, parts []io.Reader) error {
	g, gctx := errgroup.WithContext(ctx)
	var others sync.WaitGroup
	others.Add(len(parts) - 1)
	othersIn := make(chan struct{})
	go func() { others.Wait(); close(othersIn) }()
	for i, part := range parts {
		last := i == len(parts)-1
		g.Go(func() error {
			r := part
			if last {
				r = &viewGate{r: bufio.NewReaderSize(part, 256<<10), lineStart: true, wait: func() error {
					select {
					case <-othersIn:
						return nil
					case <-gctx.Done():
						return gctx.Err()
					}
				}}
			} else {
				defer others.Done()
			}
			_, err := loadWith(gctx, c, r, true, nil, 1, true)
			return err
		})
	}
	return g.Wait()
}

// finalViews begins the dump tool's definitions of views, which follow
// every table of its part (each view stood in for by a placeholder until
// then).
var finalViews = []byte("-- Final view structure for view ")

// viewGate passes a part through, waiting (once) before its first view
// definition.
type viewGate struct {
	r         *bufio.Reader
	wait      func() error
	waited    bool
	lineStart bool
	pending   []byte
	err       error
}

func (g *viewGate) Read(p []byte) (int, error) {
	for len(g.pending) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		line, err := g.r.ReadSlice('\n')
		if !g.waited && g.lineStart && bytes.HasPrefix(line, finalViews) {
			if werr := g.wait(); werr != nil {
				return 0, werr
			}
			g.waited = true
		}
		g.lineStart = err == nil
		if err != nil && err != bufio.ErrBufferFull {
			g.err = err
		}
		g.pending = line
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}
