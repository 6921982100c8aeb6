package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

// A user with rights on its own database only (shared and managed
// hosting: `GRANT ALL ON wp.* TO wp`) cannot create a scratch database
// beside it. The dump then loads into scratch tables inside the target,
// under names of scratchPrefix that no application uses, and the same
// RENAME TABLE swaps them in. Until the swap nothing the site uses is
// touched: only statements on the dump's own tables run, renamed to
// their scratch names; its views, triggers, routines, events and ALTER
// DATABASE lines (which would replace the live ones) are held back, with
// the session settings around them, and run after the swap, as the
// scratch database's are recreated.

// scratchPrefix and asidePrefix name a restore's tables inside the
// target: cairn_new_TAG_N for the copy being loaded, cairn_old_TAG_N for
// the previous tables during the swap. TAG is random and N a number, so
// the names fit MySQL's 64 characters whatever the tables' own names.
const scratchPrefix = "cairn_new"

// scratchRE matches the scratch tables' names (a run's leftovers).
var scratchRE = regexp.MustCompile(`^cairn_new_[0-9a-f]{8}_[0-9]+$`)

// asideRE matches the names a swap gives the target's previous tables
// and views inside it (see swapper.rename).
var asideRE = regexp.MustCompile(`^` + asidePrefix + `_[0-9a-f]{8}_v?[0-9]+$`)

// inPlace renames a dump's tables to scratch tables in the target, and
// holds back its other statements.
type inPlace struct {
	tag     string
	names   map[string]string // the dump's table name → its scratch name
	back    map[string]string // and back
	tables  []string          // the dump's tables, in order
	fks     map[string][]foreignKey
	held    bytes.Buffer // the statements held back, as a dump
	delim   string       // the delimiter held written last
	header  []byte       // the dump's "-- Host:" line
	nextKey int
}

// foreignKey is a constraint of a scratch table, created under a name of
// its own (names of constraints are the database's, and the live table
// has the dump's), and given its own back after the swap.
type foreignKey struct {
	scratch string // the name it was created under
	def     string // its definition as the dump has it, with its name
}

func newInPlace() *inPlace {
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck
	return &inPlace{tag: hex.EncodeToString(b), names: map[string]string{}, back: map[string]string{}, fks: map[string][]foreignKey{}, delim: ";"}
}

// scratch is table's scratch name, given on first use.
func (p *inPlace) scratch(table string) string {
	if n, ok := p.names[table]; ok {
		return n
	}
	n := scratchPrefix + "_" + p.tag + "_" + strconv.Itoa(len(p.names))
	p.names[table], p.back[n] = n, table
	p.tables = append(p.tables, table)
	return n
}

// original is the dump's name of a scratch table ("" if none).
func (p *inPlace) original(scratch string) string { return p.back[scratch] }

// hold keeps stmt to run after the swap, under delim.
func (p *inPlace) hold(stmt []byte, delim string) {
	if delim != p.delim {
		fmt.Fprintf(&p.held, "DELIMITER %s\n", delim)
		p.delim = delim
	}
	p.held.Write(stmt)
	p.held.WriteString(delim + "\n")
}

// heldDump is what was held back, as a dump the loader runs on the target
// after the swap, after the dump's header line (its source database, for
// the localizer).
func (p *inPlace) heldDump() []byte {
	var b bytes.Buffer
	b.Write(p.header)
	b.WriteByte('\n')
	b.Write(p.held.Bytes())
	if p.delim != ";" {
		b.WriteString("DELIMITER ;\n")
	}
	return b.Bytes()
}

// statement decides what becomes of one statement of the dump: run
// (renamed to the scratch tables), run and held (a session setting), or
// held only.
func (p *inPlace) statement(stmt []byte, delim string) (run []byte, err error) {
	head := headWords(stmt, 3)
	switch {
	case len(head) >= 1 && head[0] == "SET":
		p.hold(stmt, delim)
		return stmt, nil
	case len(head) >= 1 && head[0] == "UNLOCK":
		return stmt, nil
	case len(head) >= 2 && head[0] == "CREATE" && (head[1] == "SEQUENCE" || len(head) >= 3 && head[1] == "OR" && bytes.Contains(stmt[:min(len(stmt), 40)], []byte("SEQUENCE"))):
		// Tables name sequences in their DEFAULTs, by name: renamed to
		// scratch names they could not be made beside the live ones.
		return nil, fmt.Errorf("%w: the dump has a sequence (%s), which cairn cannot swap in yet; the database was left as it was. %s", cairn.ErrInvalidArgument, snippet(stmt), sequenceAdvice)
	case len(head) >= 2 && (head[0] == "DROP" || head[0] == "CREATE" || head[0] == "ALTER" || head[0] == "LOCK") && (head[1] == "TABLE" || head[1] == "TABLES"),
		len(head) >= 2 && head[0] == "INSERT" && head[1] == "INTO":
		return p.tableStatement(stmt)
	}
	// A view, trigger, routine or event, or ALTER DATABASE: it would
	// change what the site uses now.
	p.hold(stmt, delim)
	return nil, nil
}

// tableStatement renames the table a statement on one table names (its
// first backquoted name), and in a CREATE or ALTER TABLE the tables its
// foreign keys reference and the constraints' own names.
func (p *inPlace) tableStatement(stmt []byte) ([]byte, error) {
	i := bytes.IndexByte(stmt, '`')
	if i < 0 {
		return nil, fmt.Errorf("a statement on a table without a quoted name: %s", snippet(stmt))
	}
	name, rest, ok := sqlident.CutBackquoted(stmt[i:])
	if !ok || bytes.HasPrefix(rest, []byte(".")) {
		return nil, fmt.Errorf("a statement on a table of another database, or unreadable: %s", snippet(stmt))
	}
	if scratchRE.MatchString(name) || asideRE.MatchString(name) {
		// Such a table, once live, would be taken for a leftover and
		// dropped by the next restore.
		return nil, fmt.Errorf("the dump has a table named %s, a name cairn keeps for its scratch tables: it cannot be restored inside the database, which was left as it was. Try: rename that table on the source, or restore as a user who may create databases", name)
	}
	var out bytes.Buffer
	out.Write(stmt[:i])
	out.WriteString(quoteIdent(p.scratch(name)))
	if !bytes.Contains(rest, []byte("FOREIGN KEY")) {
		out.Write(rest)
		return out.Bytes(), nil
	}
	lines := bytes.Split(rest, []byte("\n"))
	for k, line := range lines {
		if k > 0 {
			out.WriteByte('\n')
		}
		def, ok := bytes.CutPrefix(bytes.TrimLeft(line, " "), []byte("CONSTRAINT `"))
		if !ok || !bytes.Contains(line, []byte(" FOREIGN KEY ")) {
			out.Write(line)
			continue
		}
		fk, err := p.foreignKey(name, append([]byte("CONSTRAINT `"), def...))
		if err != nil {
			return nil, err
		}
		out.Write(line[:len(line)-len(def)-len("CONSTRAINT `")])
		out.WriteString(fk)
	}
	return out.Bytes(), nil
}

// foreignKey renames one constraint line of table's CREATE TABLE
// ("CONSTRAINT `n` FOREIGN KEY (…) REFERENCES `t` (…) …,").
// referencesAt is where " REFERENCES `" begins in a constraint's
// definition after its name (" FOREIGN KEY (`a`, `b`) REFERENCES `t` …"),
// past the key's columns (whose names may hold the words), or -1.
func referencesAt(def []byte) int {
	cols, ok := bytes.CutPrefix(def, []byte(" FOREIGN KEY ("))
	for ok {
		if _, cols, ok = sqlident.CutBackquoted(cols); !ok {
			return -1
		}
		next, more := bytes.CutPrefix(cols, []byte(", "))
		if !more {
			break
		}
		cols = next
	}
	if !ok || !bytes.HasPrefix(cols, []byte(") REFERENCES `")) {
		return -1
	}
	return len(def) - len(cols) + 1
}

func (p *inPlace) foreignKey(table string, line []byte) (string, error) {
	_, rest, ok := sqlident.CutBackquoted(line[len("CONSTRAINT "):])
	ref := -1
	if ok {
		ref = referencesAt(rest)
	}
	if ref < 0 {
		return "", fmt.Errorf("a foreign key of %s cairn cannot read: %s", table, line)
	}
	target, after, ok := sqlident.CutBackquoted(rest[ref+len(" REFERENCES "):])
	if !ok {
		return "", fmt.Errorf("a foreign key of %s cairn cannot read: %s", table, line)
	}
	if bytes.HasPrefix(after, []byte(".")) { // another database's table: as it is
		target, after = "", rest[ref+len(" REFERENCES "):]
	}
	p.nextKey++
	scratch := scratchPrefix + "_" + p.tag + "_fk" + strconv.Itoa(p.nextKey)
	def := strings.TrimSuffix(strings.TrimSpace(string(line)), ",")
	p.fks[table] = append(p.fks[table], foreignKey{scratch: scratch, def: def})
	var b strings.Builder
	b.WriteString("CONSTRAINT " + quoteIdent(scratch))
	b.Write(rest[:ref+len(" REFERENCES ")])
	if target != "" {
		b.WriteString(quoteIdent(p.scratch(target)))
	}
	b.Write(after)
	return b.String(), nil
}

// headWords returns a statement's first n words, upper-cased, reading
// versioned comments (/*!50003 … */) as the code they hold; a quoted name
// ends the words.
func headWords(stmt []byte, n int) []string {
	var words []string
	for i := 0; i < len(stmt) && len(words) < n; {
		switch c := stmt[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case bytes.HasPrefix(stmt[i:], []byte("/*!")):
			i += 3
			for i < len(stmt) && stmt[i] >= '0' && stmt[i] <= '9' {
				i++
			}
		case bytes.HasPrefix(stmt[i:], []byte("*/")):
			i += 2
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_':
			j := i
			for j < len(stmt) && (stmt[j] >= 'A' && stmt[j] <= 'Z' || stmt[j] >= 'a' && stmt[j] <= 'z' || stmt[j] == '_' || stmt[j] >= '0' && stmt[j] <= '9') {
				j++
			}
			words = append(words, strings.ToUpper(string(stmt[i:j])))
			i = j
		default:
			return words
		}
	}
	return words
}

// replaceInPlace is Replace for a user who cannot create the scratch
// database: the dump loads into scratch tables inside the target (see
// inPlace), is checked, and is swapped in by the same RENAME TABLE; the
// previous tables are dropped. Until the swap the target's own tables,
// views, triggers, routines and events are untouched, and a failure
// drops the scratch tables.
func replaceInPlace(ctx context.Context, db *sql.DB, c Config, dump io.Reader, verify cairn.Verify, o ReplaceOptions) (err error) {
	var exists int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", c.Database).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", c.Database, err)
	}
	if exists == 0 {
		return fmt.Errorf("database %s does not exist, and %s may not create databases. Try: create it (CREATE DATABASE %s), or restore as a user with the CREATE privilege", c.Database, c.User, quoteIdent(c.Database))
	}
	if err := dropScratchTables(ctx, db, c.Database); err != nil {
		return err
	}
	into := newInPlace()
	swapped := false
	defer func() {
		if !swapped {
			// On a context of its own: ctx may be why it failed.
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dropScratchTables(cctx, db, c.Database) //nolint:errcheck // the next run drops what is left
		}
	}()
	if _, err := load(ctx, c, dump, true, into, c.loadConnections()); err != nil {
		return err
	}
	loaded, err := names(ctx, db, baseTables, c.Database)
	if err != nil {
		return err
	}
	only := map[string]string{}
	var next []move
	for _, t := range loaded {
		if orig := into.original(t); orig != "" && scratchRE.MatchString(t) {
			only[t] = orig
			next = append(next, move{from: quoteIdent(c.Database) + "." + quoteIdent(t), to: orig})
		}
	}
	got, err := stats(ctx, c, true, only, c.loadConnections())
	if err != nil {
		return err
	}
	if err := verify(Plain(got)); err != nil {
		return err
	}
	current, err := objects(ctx, db, c.Database)
	if err != nil {
		return err
	}
	var cur []string
	for _, t := range current.tables {
		if !scratchRE.MatchString(t) {
			cur = append(cur, t)
		}
	}
	sw, err := newSwapper(ctx, db, c, o)
	if err != nil {
		return err
	}
	defer sw.close()
	if err := traceSwap(ctx, db, c.Database, into.original); err != nil {
		return err
	}
	// The one statement that waits for the site's sessions: until it
	// has run the target is untouched.
	aside, err := sw.rename(ctx, c.Database, cur, next)
	if err != nil {
		return err
	}
	swapped = true
	// From here the new tables are live: finish, whatever ctx says.
	fctx := context.Background()
	if err := sw.dropObjects(fctx, c.Database, current, sw.views); err != nil {
		return fmt.Errorf("%w. The new tables are in place; the previous ones are kept as %s_* in %s", err, asidePrefix, c.Database)
	}
	// The dump's views, triggers, routines and events, with the previous
	// tables still kept aside: should one fail (a view on a table the
	// user may not read), the previous tables and objects are put back.
	held := append([]byte("SET SESSION lock_wait_timeout = "+lockWaitSeconds(sw.lockWait)+";\n"), into.heldDump()...)
	if _, err := load(fctx, c, bytes.NewReader(held), false, nil, 1); err != nil {
		if berr := sw.swapBack(fctx, c, aside, next, current); berr != nil {
			return fmt.Errorf("%w; putting the previous tables back failed too (%v): the new tables are in place, the previous ones kept as %s_* in %s", err, berr, asidePrefix, c.Database)
		}
		swapped = false // the scratch tables are dropped on the way out
		return fmt.Errorf("%w. The database was put back as it was", err)
	}
	if err := sw.dropTables(fctx, c.Database, aside); err != nil {
		return fmt.Errorf("%w. The new tables are in place; the previous ones may be left as %s_* in %s", err, asidePrefix, c.Database)
	}
	if err := sw.nameKeys(fctx, into); err != nil {
		return fmt.Errorf("%w. The new tables are in place, with all their rows", err)
	}
	return nil
}

// swapBack undoes an in-place swap whose objects could not be made: the
// objects made so far are dropped, the new tables renamed back to their
// scratch names and the previous ones to theirs in one RENAME TABLE, and
// the previous views, triggers, routines and events made again.
func (s *swapper) swapBack(ctx context.Context, c Config, aside map[string]string, next []move, current objectSet) error {
	made, err := objects(ctx, s.db, c.Database)
	if err != nil {
		return err
	}
	if err := s.dropObjects(ctx, c.Database, made, nil); err != nil {
		return err
	}
	var parts []string
	for _, m := range next {
		parts = append(parts, quoteIdent(c.Database)+"."+quoteIdent(m.to)+" TO "+m.from)
	}
	for name, tmp := range aside {
		parts = append(parts, quoteIdent(c.Database)+"."+quoteIdent(tmp)+" TO "+quoteIdent(c.Database)+"."+quoteIdent(name))
	}
	if len(parts) > 0 {
		if _, err := s.conn.ExecContext(ctx, "RENAME TABLE "+strings.Join(parts, ", ")); err != nil {
			return fmt.Errorf("rename the tables back: %w", err)
		}
	}
	return recreate(ctx, c, c.Database, c.Database, current, s.lockWait)
}

// dropScratchTables drops the scratch tables an interrupted restore left
// in target. The caller holds the target's restore lock.
func dropScratchTables(ctx context.Context, db *sql.DB, target string) error {
	left, err := names(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'cairn\\_new\\_%'", target)
	if err != nil {
		return fmt.Errorf("look for scratch tables left in %s: %w", target, err)
	}
	var drop []string
	for _, t := range left {
		if scratchRE.MatchString(t) {
			drop = append(drop, quoteIdent(target)+"."+quoteIdent(t))
		}
	}
	if len(drop) == 0 {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Scratch tables reference one another; none is referenced by a
	// table of the site's.
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+strings.Join(drop, ", ")); err != nil {
		return fmt.Errorf("drop the scratch tables left in %s by an interrupted restore: %w", target, err)
	}
	return nil
}

// dropObjects drops the views, triggers, routines and events of set, its
// views by the names renamed gives them (those the swap renamed aside).
func (s *swapper) dropObjects(ctx context.Context, target string, set objectSet, renamed map[string]string) error {
	if err := dropMovable(ctx, s.conn, target, set, renamed); err != nil {
		return err
	}
	for _, o := range set.routinesAndEvents() {
		if _, err := s.conn.ExecContext(ctx, "DROP "+o.kind+" IF EXISTS "+quoteIdent(target)+"."+quoteIdent(o.name)); err != nil {
			return fmt.Errorf("drop old %s %s: %w", strings.ToLower(o.kind), o.name, err)
		}
	}
	return nil
}

// dropTables finishes an in-place swap: the previous tables, renamed
// aside, are dropped.
func (s *swapper) dropTables(ctx context.Context, target string, aside map[string]string) error {
	var drop []string
	for _, tmp := range aside {
		drop = append(drop, quoteIdent(target)+"."+quoteIdent(tmp))
	}
	if len(drop) == 0 {
		return nil
	}
	if _, err := s.conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return err
	}
	defer s.conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 1") //nolint:errcheck
	if _, err := s.conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+strings.Join(drop, ", ")); err != nil {
		return fmt.Errorf("drop the previous tables: %w", err)
	}
	return nil
}

// nameKeys gives the new tables' foreign keys their own names back, now
// that the previous tables, which held them, are gone.
func (s *swapper) nameKeys(ctx context.Context, p *inPlace) error {
	if len(p.fks) == 0 {
		return nil
	}
	if _, err := s.conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return err
	}
	defer s.conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 1") //nolint:errcheck
	for _, t := range p.tables {
		var parts []string
		for _, fk := range p.fks[t] {
			parts = append(parts, "DROP FOREIGN KEY "+quoteIdent(fk.scratch), "ADD "+fk.def)
		}
		if len(parts) == 0 {
			continue
		}
		q := "ALTER TABLE " + quoteIdent(s.target.Database) + "." + quoteIdent(t) + " " + strings.Join(parts, ", ")
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("name the foreign keys of %s: %w", t, err)
		}
	}
	return nil
}
