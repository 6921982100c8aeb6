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
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/cairn-backup/cairn/internal/sqldump"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

// Load runs a dump made by Dump against the database c names (which must
// exist), on one connection of the Go driver, statement by statement, and
// stops at the first error.
//
// A table's rows go in by prepared INSERTs of many rows each, converted on
// the fly from the dump's INSERT statements, their values sent as bytes
// (the server's binary protocol), when every column of the table is of a
// type whose literal loads the same so: the server then parses no quotes
// nor escapes, which took half of its time for the same rows by LOAD DATA
// (measured on MariaDB 10.11: 4 s of the server's CPU for 476,625 rows
// of 1 KiB against 7 s, and 10 s as INSERTs). Otherwise the INSERTs run as
// they are. The dump's other statements run as the mysql client would run
// them, with two changes that let a dump load anywhere: a sandbox-mode first
// line is skipped, and DEFINER clauses are removed, so that the loading
// user (who may not hold SUPER or SET USER on a staging server) becomes the
// definer.
func Load(ctx context.Context, c Config, r io.Reader) error {
	_, err := load(ctx, c, r, true, nil, c.loadConnections())
	return err
}

// LoadConnections is how many connections a load sends rows on, beside
// the one that runs the dump's other statements (see senders).
var LoadConnections = 2

// load is Load, with rows by batches only if batched; it returns the
// tables whose rows went in so.
func load(ctx context.Context, c Config, r io.Reader, batched bool, into *inPlace, parallel int) (_ []string, err error) {
	return loadWith(ctx, c, r, batched, into, parallel, false)
}

// loadWith is load; alongside leaves out the dump's LOCK TABLES, as a
// load with senders does: a part loaded beside others must not lock
// (the server extends a table's lock to the tables its foreign keys
// reach, which another part may be making).
func loadWith(ctx context.Context, c Config, r io.Reader, batched bool, into *inPlace, parallel int, alongside bool) (_ []string, err error) {
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
	var packet, lowerCase int
	if err := sc.QueryRowContext(ctx, "SELECT @@max_allowed_packet, @@lower_case_table_names").Scan(&packet, &lowerCase); err != nil {
		return nil, fmt.Errorf("load into %s: %w%s", c, err, hint(err.Error()))
	}
	var pool *senders
	if batched && parallel > 1 {
		if pool, err = newSenders(ctx, db, parallel); err != nil {
			return nil, fmt.Errorf("load into %s: %w%s", c, err, hint(err.Error()))
		}
		defer func() {
			if cerr := pool.close(); err == nil && cerr != nil {
				err = fmt.Errorf("load into %s: %w", c, cerr)
			}
		}()
	}
	l := &loader{conn: sc, pool: pool, alongside: alongside, batched: batched, batchBytes: min(batchBytes, packet/4), lines: lineReader{in: bufio.NewReaderSize(r, 1<<20)}, delim: ";", plans: map[string]loadPlan{},
		local: localizer{fold: lowerCase != 0}, into: into}
	if err := l.run(ctx); err != nil {
		return nil, fmt.Errorf("load into %s: %w", c, err)
	}
	return l.batchedTables, nil
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
		return fmt.Errorf("run SQL in %s: %w", c, err)
	}
	defer defaults.Close()
	cmd := exec.CommandContext(ctx, tool, "--defaults-extra-file="+runtool.SecretPath,
		"--default-character-set=utf8mb4", "--batch", c.Database)
	cmd.ExtraFiles = []*os.File{defaults}
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
	conn          *sql.Conn
	batched       bool // rows may go in by batches (see Load)
	batchBytes    int  // the values a batch holds at most (a row more than this goes alone)
	lines         lineReader
	delim         string              // the statement delimiter (DELIMITER changes it)
	stmt          []byte              // the statement being gathered
	quote         byte                // the quote stmt is inside, or 0
	plans         map[string]loadPlan // how each table's rows go in
	rows          *rowBatches         // the table whose rows are going in by batches, or nil
	batchedTables []string            // the tables whose rows went in so
	local         localizer           // keeps the statements to the database loaded into
	into          *inPlace            // scratch tables in the target, or nil (see inPlace)
	alongside     bool                // other loads run beside this one (see loadWith)
	pool          *senders            // the connections rows go in by, or nil: conn
}

// batchBytes and batchRows bound a batch of rows: a few MiB, well under the
// servers' max_allowed_packet, and under the 65,535 values a prepared
// statement takes.
const (
	batchBytes = 4 << 20
	batchRows  = 1000
)

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
				if l.local.header(trimmed) && l.into != nil {
					l.into.header = bytes.Clone(trimmed)
				}
				continue
			case bytes.HasPrefix(line, sandboxLine): // at the top of each dump, dumps may follow one another
				continue
			case bytes.HasPrefix(line, []byte("DELIMITER ")):
				l.delim = string(bytes.TrimSpace(line[len("DELIMITER "):]))
				continue
			case l.batched && l.delim == ";" && bytes.HasPrefix(line, insertPrefix):
				if ok, err := l.insert(ctx, line); ok || err != nil {
					if err != nil {
						return fmt.Errorf("line %d: %w", l.lines.n, err)
					}
					continue
				}
			}
			if err := l.finishRows(ctx); err != nil {
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
	if err := l.finishRows(ctx); err != nil {
		return err
	}
	if l.pool != nil {
		if err := l.pool.drain(); err != nil {
			return err
		}
	}
	if len(bytes.TrimSpace(l.stmt)) > 0 {
		return fmt.Errorf("the dump ends inside a statement (line %d): it is cut short. Try: restore another snapshot, and check the disk or storage that held this one", l.lines.n)
	}
	return nil
}

// exec runs one statement, and learns from a CREATE TABLE whether the
// table's rows can go in by batches.
func (l *loader) exec(ctx context.Context, stmt []byte) error {
	if !bytes.HasPrefix(stmt, insertPrefix) {
		var err error
		if stmt, err = l.local.statement(stmt); err != nil {
			return fmt.Errorf("line %d: %w", l.lines.n, err)
		}
	}
	if bytes.HasPrefix(stmt, []byte("CREATE TABLE `")) {
		name, _, ok := sqlident.CutBackquoted(stmt[len("CREATE TABLE "):])
		if ok {
			l.plans[name] = planLoad(stmt)
		}
	}
	if (l.pool != nil || l.alongside) && skipWithSenders(stmt) {
		return nil
	}
	if l.into != nil {
		var err error
		if stmt, err = l.into.statement(stmt, l.delim); err != nil {
			return fmt.Errorf("line %d: %w", l.lines.n, err)
		}
		if stmt == nil {
			return nil // held back until the swap
		}
	}
	if l.pool != nil {
		if err := l.waitFor(stmt); err != nil {
			return err
		}
	}
	if _, err := l.conn.ExecContext(ctx, string(stmt)); err != nil {
		return fmt.Errorf("line %d: %w%s (statement: %s)", l.lines.n, err, hint(err.Error()), snippet(stmt))
	}
	if head := headWords(stmt, 1); l.pool != nil && len(head) == 1 && head[0] == "SET" {
		l.pool.set(string(stmt))
	}
	if bytes.Contains(bytes.ToLower(stmt), []byte("sql_mode")) {
		// Routines are created in their own sql_mode: with ANSI_QUOTES a
		// "…" is a name.
		if err := l.conn.QueryRowContext(ctx, "SELECT @@sql_mode LIKE '%ANSI_QUOTES%'").Scan(&l.local.ansi); err != nil {
			return fmt.Errorf("line %d: %w", l.lines.n, err)
		}
	}
	return nil
}

// skipWithSenders tells the statements a load with senders leaves out:
// LOCK TABLES (a table this session locked would keep the senders out),
// and the ALTER TABLE … DISABLE/ENABLE KEYS around a table's rows (which
// change nothing for InnoDB, and only speed MyISAM up).
func skipWithSenders(stmt []byte) bool {
	head := headWords(stmt, 2)
	switch {
	case len(head) >= 1 && (head[0] == "LOCK" || head[0] == "UNLOCK"):
		return true
	case len(head) == 2 && head[0] == "ALTER" && head[1] == "TABLE":
		return bytes.HasSuffix(bytes.TrimRight(stmt, " */"), []byte("DISABLE KEYS")) || bytes.HasSuffix(bytes.TrimRight(stmt, " */"), []byte("ENABLE KEYS"))
	}
	return false
}

// waitFor waits, before the loader runs stmt, for the rows it may depend
// on: a statement making or dropping a table, or inserting into it, for
// that table's rows; a session setting for none (senders take it in
// turn); anything else (a trigger, a view, an index) for all of them.
func (l *loader) waitFor(stmt []byte) error {
	head := headWords(stmt, 2)
	switch {
	case len(head) >= 1 && head[0] == "SET":
		return nil
	case len(head) == 2 && (head[0] == "CREATE" || head[0] == "DROP") && head[1] == "TABLE",
		len(head) == 2 && head[0] == "INSERT" && head[1] == "INTO":
		if i := bytes.IndexByte(stmt, '`'); i >= 0 {
			if name, _, ok := sqlident.CutBackquoted(stmt[i:]); ok && !l.pool.busy(name) {
				return nil
			}
		}
	}
	return l.pool.drain()
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

// loadTypes are the column types whose values, sent as bytes, the server
// reads exactly as INSERT reads the dump's literals. BIT (b'…' literals),
// spatial and vector types are among those left out: their tables load by
// INSERT.
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
	byInsert         loadPlan = iota // the dump's INSERTs as they are
	byBatches                        // rows by batches, with the dump's session settings
	byBatchesInOrder                 // rows by batches with unique_checks on (see planLoad)
)

// planLoad tells from a table's CREATE TABLE how its rows go in. Batches
// need every column of a type in loadTypes, none generated or invisible
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
	plan := byBatchesInOrder
	for _, line := range bytes.Split(create, []byte("\n"))[1:] {
		line = bytes.TrimLeft(line, " ")
		for _, key := range []string{"KEY ", "UNIQUE KEY ", "FULLTEXT KEY ", "SPATIAL KEY ", "INDEX "} {
			if bytes.HasPrefix(line, []byte(key)) {
				plan = byBatches
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

// insert takes an INSERT statement starting on line into the batches of
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
	if l.rows == nil || l.rows.from != table || l.rows.cols != cols {
		if err := l.finishRows(ctx); err != nil {
			return true, err
		}
		into := table
		if l.into != nil {
			into = l.into.scratch(table)
		}
		if err := l.startRows(ctx, table, into, cols, plan); err != nil {
			return true, err
		}
		l.batchedTables = append(l.batchedTables, table)
	}
	damaged := func(err error) error {
		l.rows = nil // its transaction is rolled back with the connection
		return fmt.Errorf("INSERT INTO %s: %w: the dump is damaged or cut short. Try: restore another snapshot, and check the disk or storage that held this one", table, err)
	}
	for {
		done, err := l.rows.add(ctx, l, values)
		if err != nil {
			if errors.As(err, new(sendError)) {
				l.rows = nil
				return true, err
			}
			return true, damaged(err)
		}
		if done {
			return true, nil
		}
		if values, err = l.lines.next(); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the dump ends inside an INSERT")
			}
			return true, damaged(err)
		}
	}
}

// rowBatches gathers the rows of a table's INSERT statements and sends
// them by prepared INSERTs of many rows each (see Load), in one
// transaction for the table, as LOAD DATA or one INSERT would.
type rowBatches struct {
	table, cols string
	from        string // the table's name in the dump (table: where the rows go)
	sender      int    // the sender that has the table's rows, with senders
	plan        loadPlan
	fields      int    // a row's, from the first
	arena       []byte // the batch's values, back to back
	ends        []int  // where each value ends in arena; -1 for NULL
	args        []any
	rows        int
	full        *sql.Stmt // the statement for a full batch, once prepared
}

// sendError is the server refusing a batch (not the dump being damaged).
type sendError struct{ error }

func (e sendError) Unwrap() error { return e.error }

func (l *loader) startRows(ctx context.Context, from, table, cols string, plan loadPlan) error {
	if l.pool != nil {
		w, err := l.pool.start(ctx, table, plan)
		l.rows = &rowBatches{table: table, from: from, cols: cols, plan: plan, sender: w}
		return err
	}
	q := "SET @cairn_autocommit = @@autocommit, autocommit = 0"
	if plan == byBatchesInOrder {
		q += ", @cairn_unique_checks = @@unique_checks, unique_checks = 1"
	}
	if _, err := l.conn.ExecContext(ctx, q); err != nil {
		return err
	}
	l.rows = &rowBatches{table: table, from: from, cols: cols, plan: plan}
	return nil
}

// finishRows sends the last batch of the table whose rows are going in,
// if any, and commits them.
func (l *loader) finishRows(ctx context.Context) error {
	b := l.rows
	if b == nil {
		return nil
	}
	l.rows = nil
	if b.full != nil {
		defer b.full.Close()
	}
	if err := b.send(ctx, l); err != nil {
		return err
	}
	if l.pool != nil {
		return l.pool.give(ctx, b.sender, item{kind: endTable, table: b.table, plan: b.plan})
	}
	q := "COMMIT"
	if _, err := l.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("load the rows of %s: %w%s", b.table, err, hint(err.Error()))
	}
	q = "SET autocommit = @cairn_autocommit"
	if b.plan == byBatchesInOrder {
		q += ", unique_checks = @cairn_unique_checks"
	}
	_, err := l.conn.ExecContext(ctx, q)
	return err
}

// add takes the rows on one line of an INSERT's values, `(…),(…),` or
// `(…);`, sending full batches as it goes, and reports whether the
// statement ended. A row never spans lines: mysqldump escapes line breaks
// inside strings. The rows are read by the dump tokenizer's values.
func (b *rowBatches) add(ctx context.Context, l *loader, p []byte) (done bool, err error) {
	for i := 0; ; {
		if i, done, err = sqldump.NextRow(p, i); done || err != nil || i == len(p) {
			return done, err
		}
		i++
		n := 0
		for last := false; !last; n++ {
			var v sqldump.Literal
			if v, i, last, err = sqldump.ReadValue(p, i); err != nil {
				return false, err
			}
			b.take(v)
		}
		if b.fields == 0 {
			b.fields = n
		}
		if n != b.fields {
			return false, fmt.Errorf("a row has %d values, the first had %d", n, b.fields)
		}
		if b.rows++; b.rows == b.maxRows() || len(b.arena) >= l.batchBytes {
			if err := b.send(ctx, l); err != nil {
				return false, err
			}
		}
	}
}

// maxRows is how many rows a full batch holds.
func (b *rowBatches) maxRows() int { return min(batchRows, 65535/b.fields) }

// send runs the batch gathered, if any.
func (b *rowBatches) send(ctx context.Context, l *loader) error {
	if b.rows == 0 {
		return nil
	}
	arena := b.arena
	if l.pool != nil {
		arena = bytes.Clone(b.arena) // the sender has it while this one fills again
		b.args = make([]any, 0, len(b.ends))
	}
	b.args = b.args[:0]
	start := 0
	for _, end := range b.ends {
		if end < 0 {
			b.args = append(b.args, nil)
			continue
		}
		b.args = append(b.args, arena[start:end:end])
		start = end
	}
	if l.pool != nil {
		err := l.pool.give(ctx, b.sender, item{kind: rowsBatch, table: b.table, query: b.query(b.rows), args: b.args})
		b.arena, b.ends, b.rows = b.arena[:0], b.ends[:0], 0
		return err
	}
	var err error
	if b.rows == b.maxRows() {
		if b.full == nil {
			b.full, err = l.conn.PrepareContext(ctx, b.query(b.rows))
		}
		if err == nil {
			_, err = b.full.ExecContext(ctx, b.args...)
		}
	} else {
		_, err = l.conn.ExecContext(ctx, b.query(b.rows), b.args...)
	}
	if err != nil {
		return sendError{fmt.Errorf("load the rows of %s: %w%s", b.table, err, hint(err.Error()))}
	}
	b.arena, b.ends, b.rows = b.arena[:0], b.ends[:0], 0
	return nil
}

// query is the INSERT of n rows of placeholders.
func (b *rowBatches) query(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", b.fields), ",") + ")"
	return "INSERT INTO " + quoteIdent(b.table) + " " + b.cols + " VALUES " + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// take puts a value into the batch: a string's bytes unescaped, a hex
// literal's bytes, a number as written, NULL as NULL.
func (b *rowBatches) take(v sqldump.Literal) {
	switch {
	case v.Kind == sqldump.Null:
		b.ends = append(b.ends, -1)
		return
	case v.Kind == sqldump.Hex:
		b.arena = sqldump.AppendHex(b.arena, v.Raw)
	case v.Escaped:
		b.arena = sqldump.AppendUnescaped(b.arena, v.Raw)
	default: // a number, or a string without escapes
		b.arena = append(b.arena, v.Raw...)
	}
	b.ends = append(b.ends, len(b.arena))
}
