package mysql

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

// Load runs a dump made by Dump against the database c names (which must
// exist), on one connection of the Go driver, statement by statement, and
// stops at the first error.
//
// A table's rows go in with LOAD DATA LOCAL INFILE, converted on the fly
// from the dump's INSERT statements, when the server allows it and every
// column of the table is of a type that loads the same either way (the
// server takes rows about twice as fast so); otherwise the INSERTs run as
// they are. The dump's other statements run as the mysql client would run
// them, with two changes that let a dump load anywhere: a sandbox-mode first
// line is skipped, and DEFINER clauses are removed, so that the loading
// user (who may not hold SUPER or SET USER on a staging server) becomes the
// definer.
func Load(ctx context.Context, c Config, r io.Reader) error {
	_, err := load(ctx, c, r, true)
	return err
}

// load is Load, with LOAD DATA only if infile; it returns the tables that
// went in by LOAD DATA.
func load(ctx context.Context, c Config, r io.Reader, infile bool) ([]string, error) {
	dc := c.driverConfig()
	dc.MaxAllowedPacket = 0 // the server's: statements as large as it takes
	conn, err := driver.NewConnector(dc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	sc, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("load into %s: %w%s", c, err, hint(err.Error()))
	}
	defer sc.Close()
	var allowed int
	if err := sc.QueryRowContext(ctx, "SELECT @@local_infile").Scan(&allowed); err != nil {
		return nil, fmt.Errorf("load into %s: %w%s", c, err, hint(err.Error()))
	}
	l := &loader{conn: sc, infile: infile && allowed == 1, lines: lineReader{in: bufio.NewReaderSize(r, 1<<20)}, delim: ";", plans: map[string]loadPlan{}}
	if err := l.run(ctx); err != nil {
		return nil, fmt.Errorf("load into %s: %w", c, err)
	}
	return l.infiled, nil
}

// Exec runs SQL statements (as a user writes them for the mysql client)
// with the engine's own client.
func Exec(ctx context.Context, c Config, statements string) error {
	tool, err := runtool.Find(mysqlClients, "mariadb", "mysql")
	if err != nil {
		return err
	}
	defaults, err := defaultsFile(c)
	if err != nil {
		return fmt.Errorf("run SQL in %s: write defaults file: %w", c, err)
	}
	defer os.Remove(defaults)
	cmd := exec.CommandContext(ctx, tool, "--defaults-extra-file="+defaults,
		"--default-character-set=utf8mb4", "--batch", c.Database)
	cmd.Stdin, cmd.Stdout = strings.NewReader(statements), io.Discard
	if err := runtool.Run(ctx, cmd); err != nil {
		return fmt.Errorf("run SQL in %s with %s: %w%s", c, filepath.Base(tool), err, hint(err.Error()))
	}
	return nil
}

// sandboxLine starts the first line of dumps from MariaDB 10.5.25,
// 10.6.18, 10.11.8, 11.x and later.
var sandboxLine = []byte("/*M!999999\\- enable the sandbox mode */")

// definerRE matches the DEFINER clause of a view, trigger, routine or event.
var definerRE = regexp.MustCompile("DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`")

// loader runs a dump on one connection.
type loader struct {
	conn    *sql.Conn
	infile  bool // the server takes LOAD DATA LOCAL INFILE
	lines   lineReader
	delim   string              // the statement delimiter (DELIMITER changes it)
	stmt    []byte              // the statement being gathered
	quote   byte                // the quote stmt is inside, or 0
	plans   map[string]loadPlan // how each table's rows go in
	feed    *feed               // the LOAD DATA in progress, or nil
	infiled []string            // the tables that went in by LOAD DATA
}

// lineReader reads a dump line by line, however long the lines.
type lineReader struct {
	in   *bufio.Reader
	long []byte // a line longer than in's buffer, gathered
	n    int    // lines read
}

// next returns the next line without its end of line. It is valid until
// the next call.
func (r *lineReader) next() ([]byte, error) {
	r.long = r.long[:0]
	for {
		b, err := r.in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.long = append(r.long, b...)
			continue
		}
		if err != nil && (len(b) == 0 && len(r.long) == 0 || !errors.Is(err, io.EOF)) {
			return nil, err
		}
		r.n++
		if len(r.long) > 0 {
			b = append(r.long, b...)
			r.long = b
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		return bytes.TrimSuffix(b, []byte("\r")), nil
	}
}

func (l *loader) run(ctx context.Context) error {
	for {
		line, err := l.lines.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the dump: %w", err)
		}
		if l.stmt == nil {
			trimmed := bytes.TrimSpace(line)
			switch {
			case len(trimmed) == 0 || bytes.HasPrefix(trimmed, []byte("--")):
				continue
			case bytes.HasPrefix(line, sandboxLine): // at the top of each dump, dumps may follow one another
				continue
			case bytes.HasPrefix(line, []byte("DELIMITER ")):
				l.delim = string(bytes.TrimSpace(line[len("DELIMITER "):]))
				continue
			case l.infile && l.delim == ";" && bytes.HasPrefix(line, insertPrefix):
				if ok, err := l.insert(ctx, line); ok || err != nil {
					if err != nil {
						return fmt.Errorf("line %d: %w", l.lines.n, err)
					}
					continue
				}
			}
			if err := l.finishFeed(ctx); err != nil {
				return err
			}
			l.stmt = []byte{}
		}
		if bytes.HasPrefix(line, []byte("/*!")) || bytes.HasPrefix(line, []byte("CREATE ")) {
			line = definerRE.ReplaceAll(line, nil)
		}
		if len(l.stmt) > 0 {
			l.stmt = append(l.stmt, '\n')
		}
		l.stmt = append(l.stmt, line...)
		if l.quote = quoteState(l.quote, line); l.quote != 0 && l.delim == ";" {
			continue
		}
		end := bytes.TrimRight(line, " \t")
		if !bytes.HasSuffix(end, []byte(l.delim)) {
			continue
		}
		stmt := bytes.TrimRight(l.stmt, " \t")
		stmt = stmt[:len(stmt)-len(l.delim)]
		if err := l.exec(ctx, stmt); err != nil {
			return err
		}
		l.stmt, l.quote = nil, 0
	}
	if err := l.finishFeed(ctx); err != nil {
		return err
	}
	if len(bytes.TrimSpace(l.stmt)) > 0 {
		return fmt.Errorf("the dump ends inside a statement (line %d): it is cut short. Try: restore another snapshot, and check the disk or storage that held this one", l.lines.n)
	}
	return nil
}

// exec runs one statement, and learns from a CREATE TABLE whether the
// table's rows can go in by LOAD DATA.
func (l *loader) exec(ctx context.Context, stmt []byte) error {
	if _, err := l.conn.ExecContext(ctx, string(stmt)); err != nil {
		return fmt.Errorf("line %d: %w%s (statement: %s)", l.lines.n, err, hint(err.Error()), snippet(stmt))
	}
	if bytes.HasPrefix(stmt, []byte("CREATE TABLE `")) {
		name, _, ok := sqlident.CutBackquoted(stmt[len("CREATE TABLE "):])
		if ok {
			l.plans[name] = planLoad(stmt)
		}
	}
	return nil
}

// snippet shows the start of a statement in a message: an INSERT only up to
// its values (rows may hold personal data), anything else up to 100 bytes.
func snippet(stmt []byte) string {
	if bytes.HasPrefix(stmt, []byte("INSERT ")) {
		if i := bytes.Index(stmt, []byte(" VALUES")); i > 0 {
			return string(stmt[:i]) + " VALUES …"
		}
	}
	if len(stmt) > 100 {
		return string(stmt[:100]) + "…"
	}
	return string(stmt)
}

// quoteState follows quotes through one line of a statement: it returns
// the quote the line ends inside ('\”, '"' or '`'), or 0, given the one it
// started inside.
func quoteState(q byte, line []byte) byte {
	for i := 0; i < len(line); i++ {
		b := line[i]
		switch {
		case q == 0 && (b == '\'' || b == '"' || b == '`'):
			q = b
		case q != 0 && q != '`' && b == '\\':
			i++
		case b == q:
			q = 0
		}
	}
	return q
}

// loadTypes are the column types whose values LOAD DATA reads exactly as
// INSERT reads the dump's literals. BIT (b'…' literals), spatial and vector
// types are among those left out: their tables load by INSERT.
var loadTypes = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`tinyint smallint mediumint int integer bigint decimal numeric dec fixed
		float double real char varchar binary varbinary tinytext text mediumtext longtext
		tinyblob blob mediumblob longblob date time datetime timestamp year enum set json uuid inet4 inet6`) {
		loadTypes[t] = true
	}
}

// loadPlan is how a table's rows go in.
type loadPlan int

const (
	byInsert          loadPlan = iota // the dump's INSERTs as they are
	byLoadData                        // LOAD DATA, with the dump's session settings
	byLoadDataInOrder                 // LOAD DATA with unique_checks on (see planLoad)
)

// planLoad tells from a table's CREATE TABLE how its rows go in. LOAD DATA
// needs every column of a type in loadTypes, none generated or invisible
// (INSERT without a column list skips invisible columns), and no system
// versioning. A table with no index but its primary key gets its rows in
// primary key order, which InnoDB appends as they come: there the bulk path
// MariaDB takes for an empty table with unique_checks off (the dump's
// setting) only sorts them again, taking as long and twice the server's CPU
// (measured on MariaDB 10.11), so unique_checks is turned on for it. With
// secondary indexes the bulk path is faster and is kept.
func planLoad(create []byte) loadPlan {
	if bytes.Contains(create, []byte("WITH SYSTEM VERSIONING")) {
		return byInsert
	}
	plan := byLoadDataInOrder
	for _, line := range bytes.Split(create, []byte("\n"))[1:] {
		line = bytes.TrimLeft(line, " ")
		for _, key := range []string{"KEY ", "UNIQUE KEY ", "FULLTEXT KEY ", "SPATIAL KEY ", "INDEX "} {
			if bytes.HasPrefix(line, []byte(key)) {
				plan = byLoadData
			}
		}
		def, ok := bytes.CutPrefix(line, []byte("`"))
		if !ok {
			continue // a key, a constraint or the table's options
		}
		_, rest, ok := sqlident.CutBackquoted(append([]byte("`"), def...))
		if !ok {
			return byInsert
		}
		rest = bytes.TrimLeft(rest, " ")
		n := 0
		for n < len(rest) && (rest[n] >= 'a' && rest[n] <= 'z' || rest[n] >= '0' && rest[n] <= '9' || rest[n] == '_') {
			n++
		}
		if !loadTypes[string(rest[:n])] || bytes.Contains(rest, []byte("GENERATED ALWAYS")) || bytes.Contains(rest, []byte("INVISIBLE")) {
			return byInsert
		}
	}
	return plan
}

// insert takes an INSERT statement starting on line into the LOAD DATA of
// its table, reading the lines that follow up to the statement's end. It
// returns false, having read nothing more, when the statement must run as
// it is.
func (l *loader) insert(ctx context.Context, line []byte) (bool, error) {
	table, rest, ok := sqlident.CutBackquoted(line[len("INSERT INTO "):])
	plan := l.plans[table]
	if !ok || plan == byInsert {
		return false, nil
	}
	cols := ""
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) > 0 && rest[0] == '(' {
		end := bytes.IndexByte(rest, ')')
		if end < 0 {
			return false, nil
		}
		cols, rest = string(rest[:end+1]), rest[end+1:]
	}
	values, ok := bytes.CutPrefix(bytes.TrimLeft(rest, " "), []byte("VALUES"))
	if !ok {
		return false, nil
	}
	if l.feed == nil || l.feed.table != table || l.feed.cols != cols {
		if err := l.finishFeed(ctx); err != nil {
			return true, err
		}
		if err := l.startFeed(ctx, table, cols, plan); err != nil {
			return true, err
		}
		l.infiled = append(l.infiled, table)
	}
	for {
		done, err := l.feed.rows(values)
		if err != nil {
			l.feed.fail(err)
			l.finishFeed(ctx) //nolint:errcheck // the conversion error says more
			return true, fmt.Errorf("INSERT INTO %s: %w: the dump is damaged or cut short. Try: restore another snapshot, and check the disk or storage that held this one", table, err)
		}
		if done {
			return true, nil
		}
		if l.feed.over.Load() {
			// The server ended the LOAD DATA early: finishFeed says why.
			return true, l.finishFeed(ctx)
		}
		if values, err = l.lines.next(); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the dump ends inside an INSERT: it is cut short. Try: restore another snapshot, and check the disk or storage that held this one")
			}
			l.feed.fail(err)
			l.finishFeed(ctx) //nolint:errcheck
			return true, err
		}
	}
}

// feed is one LOAD DATA LOCAL INFILE in progress: the rows of a table's
// INSERT statements, written as tab-separated text into a pipe the driver
// sends to the server.
type feed struct {
	table, cols string
	pw          *io.PipeWriter
	w           *bufio.Writer
	done        chan error
	over        atomic.Bool // the LOAD DATA statement returned
	handler     string
	plan        loadPlan
}

var feeds atomic.Int64

func (l *loader) startFeed(ctx context.Context, table, cols string, plan loadPlan) error {
	if plan == byLoadDataInOrder {
		if _, err := l.conn.ExecContext(ctx, "SET @cairn_unique_checks = @@unique_checks, unique_checks = 1"); err != nil {
			return err
		}
	}
	// The rows are in the dump's character set (its SET NAMES): binary,
	// or utf8mb4 in snapshots taken before cairn dumped bytes as stored.
	var charset string
	if err := l.conn.QueryRowContext(ctx, "SELECT @@character_set_client").Scan(&charset); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	f := &feed{table: table, cols: cols, pw: pw, w: bufio.NewWriterSize(pw, 1<<20), done: make(chan error, 1),
		handler: "cairn-" + strconv.FormatInt(feeds.Add(1), 10), plan: plan}
	driver.RegisterReaderHandler(f.handler, func() io.Reader { return pr })
	q := "LOAD DATA LOCAL INFILE 'Reader::" + f.handler + "' INTO TABLE " + quoteIdent(table) +
		` CHARACTER SET ` + charset + ` FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' ` + cols
	go func() {
		_, err := l.conn.ExecContext(ctx, q)
		f.over.Store(true)
		pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		f.done <- err
	}()
	l.feed = f
	return nil
}

func (f *feed) fail(err error) { f.pw.CloseWithError(err) }

// finishFeed ends the LOAD DATA in progress, if any, and checks that the
// server read every row as whole.
func (l *loader) finishFeed(ctx context.Context) error {
	f := l.feed
	if f == nil {
		return nil
	}
	l.feed = nil
	werr := f.w.Flush()
	f.pw.Close()
	err := <-f.done
	driver.DeregisterReaderHandler(f.handler)
	if err != nil {
		return fmt.Errorf("load the rows of %s (LOAD DATA LOCAL INFILE): %w%s", f.table, err, hint(err.Error()))
	}
	if werr != nil {
		return fmt.Errorf("load the rows of %s: %w", f.table, werr)
	}
	if err := l.checkWarnings(ctx, f.table); err != nil {
		return err
	}
	if f.plan == byLoadDataInOrder {
		_, err = l.conn.ExecContext(ctx, "SET unique_checks = @cairn_unique_checks")
	}
	return err
}

// checkWarnings fails when LOAD DATA found a row with too few or too many
// fields: the rows were not cut as the dump has them.
func (l *loader) checkWarnings(ctx context.Context, table string) error {
	var n int
	if err := l.conn.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&n); err != nil || n == 0 {
		return err
	}
	rows, err := l.conn.QueryContext(ctx, "SHOW WARNINGS LIMIT 20")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return err
		}
		if code == 1261 || code == 1262 {
			return fmt.Errorf("load the rows of %s: %s: the rows were read wrongly (a bug in cairn; please report it). Nothing was swapped in", table, msg)
		}
	}
	return rows.Err()
}

// rows converts the rows on one line of an INSERT's values, `(…),(…),` or
// `(…);`, and reports whether the statement ended. A row never spans lines:
// mysqldump escapes line breaks inside strings.
func (f *feed) rows(p []byte) (done bool, err error) {
	w := f.w
	for i := 0; ; {
		if i, done, err = nextRow(p, i); done || err != nil || i == len(p) {
			return done, err
		}
		i++
		for field := 0; ; field++ {
			if field > 0 {
				w.WriteByte('\t')
			}
			if i, err = f.field(p, i); err != nil {
				return false, err
			}
			if i >= len(p) {
				return false, errors.New("a row is cut off at the end of its line")
			}
			if p[i] == ')' {
				i++
				w.WriteByte('\n')
				break
			}
			if p[i] != ',' {
				return false, fmt.Errorf("unexpected %q after a value", p[i])
			}
			i++
		}
	}
}

// field converts the literal at p[i:] and returns where it ends.
func (f *feed) field(p []byte, i int) (int, error) {
	w := f.w
	if bytes.HasPrefix(p[i:], []byte("_binary '")) {
		i += len("_binary ")
	}
	switch {
	case i < len(p) && p[i] == '\'':
		// The dump's escapes (\0 \' \" \n \r \Z \\) mean the same to
		// LOAD DATA; a raw tab would end the field, so it is escaped.
		i++
		for {
			j := bytes.IndexByte(p[i:], '\'')
			if j < 0 {
				return i, errors.New("a string is not closed on its line")
			}
			run := p[i : i+j]
			if k := bytes.IndexByte(run, '\\'); k >= 0 {
				// run ends before a quote: the escaped byte is in p.
				writeTabs(w, run[:k])
				w.Write(p[i+k : i+k+2])
				i += k + 2
				continue
			}
			writeTabs(w, run)
			return i + j + 1, nil
		}
	case bytes.HasPrefix(p[i:], []byte("0x")):
		i += 2
		start := i
		for i < len(p) && isHex(p[i]) {
			i++
		}
		if (i-start)%2 != 0 {
			return i, errors.New("a hex literal has an odd number of digits")
		}
		for k := start; k < i; k += 2 {
			writeEscaped(w, unhex(p[k])<<4|unhex(p[k+1]))
		}
		return i, nil
	case bytes.HasPrefix(p[i:], []byte("NULL")):
		w.WriteString(`\N`)
		return i + 4, nil
	}
	start := i
	for i < len(p) && (p[i] >= '0' && p[i] <= '9' || p[i] == '-' || p[i] == '+' || p[i] == '.' || p[i] == 'e' || p[i] == 'E') {
		i++
	}
	if i == start {
		return i, fmt.Errorf("unexpected literal at %q", p[i:min(len(p), i+20)])
	}
	w.Write(p[start:i])
	return i, nil
}

// writeTabs writes a run of a string, escaping its raw tabs.
func writeTabs(w *bufio.Writer, run []byte) {
	for {
		t := bytes.IndexByte(run, '\t')
		if t < 0 {
			w.Write(run)
			return
		}
		w.Write(run[:t])
		w.WriteString(`\t`)
		run = run[t+1:]
	}
}

// writeEscaped writes one byte of binary data for LOAD DATA.
func writeEscaped(w *bufio.Writer, b byte) {
	switch b {
	case '\\':
		w.WriteString(`\\`)
	case '\t':
		w.WriteString(`\t`)
	case '\n':
		w.WriteString(`\n`)
	case 0:
		w.WriteString(`\0`)
	default:
		w.WriteByte(b)
	}
}

func isHex(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }

func unhex(b byte) byte {
	switch {
	case b >= 'a':
		return b - 'a' + 10
	case b >= 'A':
		return b - 'A' + 10
	}
	return b - '0'
}
