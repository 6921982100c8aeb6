package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A part of rows of a dump in parts (pg_dump --section=data: SET lines,
// COPY blocks, sequence values, large objects) is loaded by cairn itself
// over one connection, in one transaction, not by psql: its rows go to the
// server as they are read, with no psql process between (on a machine of
// few cores, psql's copying of every row costs the server's COPYs their
// time). Each COPY's table is truncated first in the transaction, so that
// COPY … FREEZE may write its rows frozen (see filterCopies). Only
// statements a data section holds are run: SET and SELECT (set_config,
// setval, the large objects' lo_ functions), each ending its last line
// with a semicolon, and COPY; a large object's BEGIN and COMMIT are
// dropped (the part is one transaction already), as are pg_dump's
// \restrict and \unrestrict lines. Anything else, any other backslash
// command among them, fails the load: no part cairn dumped holds one.

// loadRows loads part, a part of rows (see above), into c's database as
// role owner, and returns the tables it copied rows into; a failure
// leaves the database as it was.
func loadRows(ctx context.Context, c Config, owner string, part io.Reader) ([]copied, error) {
	conn, tables, err := rowsOn(ctx, c, owner, part)
	if err != nil {
		return nil, err
	}
	return tables, conn.Close(ctx)
}

// rowsOn is loadRows on a connection of its own, which it returns, still
// open, for what follows the rows (see afterRows); on a failure it has
// closed it.
func rowsOn(ctx context.Context, c Config, owner string, part io.Reader) (*pgx.Conn, []copied, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	tables, err := rowsInto(ctx, conn.PgConn(), owner, part)
	if err != nil {
		conn.Close(context.Background()) //nolint:errcheck // ending the session ends its transaction
		return nil, nil, fmt.Errorf("load into %s: %w%s", c, err, hint(err.Error()))
	}
	return conn, tables, nil
}

// copied is a table whose rows a part held: its name as the dump writes
// it, and the bytes of its rows there.
type copied struct {
	table string
	bytes int64
}

// rowsInto is loadRows on pg, which it leaves as role owner, with the
// part's SET lines in force.
func rowsInto(ctx context.Context, pg *pgconn.PgConn, owner string, part io.Reader) (tables []copied, err error) {
	exec := func(sql string) error {
		_, err := pg.Exec(ctx, sql).ReadAll()
		return err
	}
	if err := exec("BEGIN; SET ROLE " + ident(owner)); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(part, 1<<20)
	var stmt strings.Builder
	var text sqlText // a ; inside a literal ends no statement
	for {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) && line == "" {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		trimmed := strings.TrimSpace(line)
		if stmt.Len() == 0 {
			switch {
			case trimmed == "" || strings.HasPrefix(trimmed, "--"):
				continue
			case restrictRE.MatchString(trimmed):
				continue
			case strings.HasPrefix(trimmed, `\`):
				return nil, fmt.Errorf("the dump's rows hold a psql command, which cairn does not run: %.100q", trimmed)
			}
		}
		stmt.WriteString(line)
		text.write([]byte(line))
		if !strings.HasSuffix(trimmed, ";") || text.literal() {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("the dump is cut short inside a statement: %.100q", stmt.String())
			}
			continue
		}
		sql := strings.TrimSpace(stmt.String())
		stmt.Reset()
		switch upper := strings.ToUpper(sql); {
		case strings.HasPrefix(sql, "COPY ") && strings.HasSuffix(sql, " FROM stdin;"):
			// (On several lines when a quoted name holds a newline.)
			c, err := copyInto(ctx, pg, sql, br)
			if err != nil {
				return nil, err
			}
			tables = append(tables, c)
		case upper == "BEGIN;" || upper == "COMMIT;":
			// A large object's, written for a load in autocommit.
		case strings.HasPrefix(upper, "SET ") || strings.HasPrefix(upper, "SELECT "):
			if err := exec(sql); err != nil {
				return nil, fmt.Errorf("%.100s: %w", sql, err)
			}
		default:
			return nil, fmt.Errorf("the dump's rows hold a statement cairn does not load there: %.100q", sql)
		}
	}
	if stmt.Len() > 0 {
		return nil, fmt.Errorf("the dump is cut short inside a statement: %.100q", stmt.String())
	}
	return tables, exec("COMMIT")
}

// copyInto runs on pg the COPY statement copy (`COPY table (…) FROM
// stdin;`) of a part, its rows read from r up to their \. line, into the
// table emptied first.
func copyInto(ctx context.Context, pg *pgconn.PgConn, copy string, r *bufio.Reader) (copied, error) {
	table, ok := copyTarget([]byte(copy))
	if !ok {
		return copied{}, fmt.Errorf("a COPY whose table cairn cannot read: %.200q", copy)
	}
	if _, err := pg.Exec(ctx, "TRUNCATE ONLY "+table).ReadAll(); err != nil {
		return copied{}, fmt.Errorf("truncate %s: %w", table, err)
	}
	rows := &copyData{r: r, start: true}
	if _, err := pg.CopyFrom(ctx, rows, strings.TrimSuffix(copy, ";")+" WITH (FREEZE)"); err != nil {
		return copied{}, fmt.Errorf("the rows of %s: %w", table, err)
	}
	if !rows.end {
		return copied{}, fmt.Errorf("the dump is cut short inside the rows of %s", table)
	}
	return copied{table, rows.n}, nil
}

// readLine reads one line, its newline kept, however long.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return string(line), err
	}
	long := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = br.ReadSlice('\n')
		long = append(long, line...)
	}
	return string(long), err
}

// copyData reads a COPY block's rows from r as they are, up to (not
// with) its \. line; end says it was found.
type copyData struct {
	r       *bufio.Reader
	pending []byte // what is left of the line read last
	start   bool   // pending is empty at the start of a line
	end     bool
	n       int64 // bytes read
}

func (c *copyData) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pending) == 0 {
			if c.end || n > 0 && c.r.Buffered() == 0 {
				break // what is at hand now; the next read waits
			}
			line, err := c.r.ReadSlice('\n')
			if c.start && err == nil && (bytes.Equal(line, []byte("\\.\n")) || bytes.Equal(line, []byte("\\.\r\n"))) {
				c.end = true
				break
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				c.pending = nil
				if n > 0 {
					c.n += int64(n)
					return n, nil
				}
				return 0, err
			}
			c.pending, c.start = line, err == nil
		}
		k := copy(p[n:], c.pending)
		c.pending, n = c.pending[k:], n+k
	}
	if n == 0 && c.end {
		return 0, io.EOF
	}
	c.n += int64(n)
	return n, nil
}

// schemaMax bounds a schema part run by cairn itself (see loadSchema); a
// larger one goes through psql, as it comes.
const schemaMax = 16 << 20

// loadSchema loads a part of schema (the part before the rows, or what
// remains of the one after them) into c as role owner, in one
// transaction, over the wire protocol: no psql to start, no psql command
// to refuse. A part too large to hold, or holding anything but SQL
// statements (a COPY, a backslash command other than pg_dump's \restrict
// pair), goes to psql, through restricted, which refuses what is not its.
func loadSchema(ctx context.Context, c Config, owner string, part io.Reader) error {
	text, err := io.ReadAll(io.LimitReader(part, schemaMax+1))
	if err != nil {
		return err
	}
	sql, ok := plainSQL(text)
	// The server reads a query whole before it runs any of it: the SET
	// lines that say how to read the rest (standard_conforming_strings
	// above all, which the user's own settings may have off) go first,
	// on their own. One further on goes to psql, which runs statements
	// one by one.
	head, body := splitHead(sql)
	if len(text) > schemaMax || !ok || strings.Contains("\n"+body, "\nSET standard_conforming_strings") {
		return loadAs(ctx, c, owner, io.MultiReader(bytes.NewReader(text), part))
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background()) //nolint:errcheck // ending the session ends its transaction
	pg := conn.PgConn()
	// skip is how many lines of the schema come before q.
	exec := func(q string, skip int) error {
		if _, err := pg.Exec(ctx, q).ReadAll(); err != nil {
			return fmt.Errorf("load into %s: %w%s%s", c, err, atLine(q, skip, err), hint(err.Error()))
		}
		return nil
	}
	if err := exec("BEGIN; SET ROLE "+ident(owner)+";\n"+head, -1); err != nil {
		return err
	}
	if err := exec(body, strings.Count(head, "\n")); err != nil {
		return err
	}
	return exec("COMMIT", 0)
}

// splitHead splits sql into its head, the lines before its first
// statement that are blank, comments, or one-line SET statements and
// set_config calls (pg_dump's), and the rest.
func splitHead(sql string) (head, body string) {
	at := 0
	for at < len(sql) {
		end := strings.IndexByte(sql[at:], '\n')
		if end < 0 {
			end = len(sql) - at - 1
		}
		line := strings.TrimSpace(sql[at : at+end+1])
		set := (strings.HasPrefix(line, "SET ") || strings.HasPrefix(line, "SELECT pg_catalog.set_config(")) && strings.HasSuffix(line, ";")
		if line != "" && !strings.HasPrefix(line, "--") && !set {
			break
		}
		at += end + 1
	}
	return sql[:at], sql[at:]
}

// plainSQL is text without pg_dump's \restrict line (ahead of any
// statement) and its \unrestrict (with the same key, after every
// statement), if nothing else in it is for psql rather than the server
// (another backslash command, a COPY's rows). A line like those inside a
// literal (a function's body, say: see sqlText) is kept.
func plainSQL(text []byte) (string, bool) {
	var b strings.Builder
	b.Grow(len(text))
	key, started := "", false
	var sql sqlText
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line = text[:i+1]
		}
		text = text[len(line):]
		lit := sql.literal()
		sql.write(line)
		if lit { // inside a string or a function's body
			b.Write(line)
			continue
		}
		trimmed := bytes.TrimSpace(line)
		if m := restrictRE.FindSubmatch(line); m != nil {
			switch {
			case m[1] == nil && !started && key == "":
				key = string(m[2])
				continue
			case m[1] != nil && key != "" && string(m[2]) == key && onlyComments(text):
				continue
			}
		}
		if len(trimmed) > 0 && !bytes.HasPrefix(trimmed, []byte("--")) {
			started = true
		}
		if bytes.HasPrefix(line, []byte(`\`)) {
			return "", false
		}
		if bytes.HasPrefix(line, []byte("COPY ")) { // (its FROM stdin may be lines on, past a name's newline)
			return "", false
		}
		b.Write(line)
	}
	return b.String(), true
}

// onlyComments reports whether text holds nothing but blank lines and
// comments.
func onlyComments(text []byte) bool {
	for _, l := range bytes.Split(text, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && !bytes.HasPrefix(l, []byte("--")) {
			return false
		}
	}
	return true
}

// atLine says on which line of the schema (sql, its first line's number
// past skip) the statement that failed with err is, when the server says
// where.
func atLine(sql string, skip int, err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position <= 0 {
		return ""
	}
	runes := 0
	for i := range sql {
		if runes++; runes == int(pe.Position) {
			return fmt.Sprintf(" (line %d of the schema: %.100q)", skip+strings.Count(sql[:i], "\n")+1, lineAt(sql, i))
		}
	}
	return ""
}

// lineAt is the line of s around byte i.
func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}
