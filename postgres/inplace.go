package postgres

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/runtool"
)

// A user who may not create databases (no CREATEDB: managed hosting's
// one role per application, owning its database) restores inside the
// target, in one transaction: the target's schemas are renamed aside
// (cairn_old_TAG_N), fresh ones made in their place with the same owner
// and grants, the dump loaded into them, its tables counted and
// checksummed in the same transaction, and only when they match the
// snapshot is it committed. PostgreSQL's DDL is transactional: until the
// commit every other session sees the old schemas and tables, and goes on
// reading and writing them; at the commit it sees the new ones, at once.
// A failure, a mismatch, or a killed cairn (psql's connection ends) rolls
// all of it back, leaving nothing behind. The old schemas are dropped
// after the commit; one that could not be (a session still in a
// transaction on its tables) is dropped by the next restore.

// oldSchemaRE matches the schemas the target's are renamed to.
var oldSchemaRE = regexp.MustCompile(`^cairn_old_[0-9a-f]{8}_[0-9]+$`)

// replaceInPlace is Replace inside the target database (see above); owner
// is the target's owner, whose role loads the dump.
func replaceInPlace(ctx context.Context, c Config, dump io.Reader, verify cairn.Verify, o ReplaceOptions, owner string) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	wait := o.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	if err := dropOldSchemas(ctx, conn, wait); err != nil {
		return err
	}
	prologue, aside, err := moveSchemas(ctx, conn, owner, wait)
	if err != nil {
		return err
	}
	psql, err := runtool.Find("apt-get install postgresql-client", "psql")
	if err != nil {
		return err
	}
	key := make([]byte, 8)
	rand.Read(key) //nolint:errcheck
	marker := "cairn-stat-" + hex.EncodeToString(key)
	got, prints, commit, done, err := startLoad(ctx, psql, c, prologue, restricted(ctx, psql, dump), marker)
	if err != nil && strings.Contains(err.Error(), "lock timeout") && ctx.Err() == nil {
		return schemaHolders(ctx, conn, c.Database, wait)
	}
	if err != nil {
		return err
	}
	if err := verify(withOldNames(got)); err != nil {
		done("ROLLBACK") //nolint:errcheck // the mismatch is the error
		return err
	}
	if err := done(commit); err != nil {
		return fmt.Errorf("commit the restore of %s: %w", c, err)
	}
	// The tables' fingerprints as the commit left them: read in its
	// transaction, before anyone else could write to them.
	cairn.TraceSwapping(ctx, func() (map[string]string, error) { return prints, nil })
	// The previous tables, in the schemas renamed aside, as the commit
	// left them: what the site wrote to them up to it.
	cairn.TraceReplaced(ctx, func() (map[string]string, error) {
		all, _, err := UpdateTimes(ctx, c)
		old := map[string]string{}
		for name, print := range all {
			schema, table, _ := strings.Cut(name, ".")
			if from, ok := aside[schema]; ok {
				old[from+"."+table] = print
			}
		}
		return old, err
	})
	// From here the new schemas are live. The old ones go now if no
	// session still uses their tables (waiting briefly: a drop waiting
	// for its lock holds up those sessions), else with the next restore:
	// the restore itself is done.
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dropOldSchemas(fctx, conn, time.Second) //nolint:errcheck // what is left, the next restore drops
	return nil
}

// dropOldSchemas drops the schemas an earlier in-place restore renamed
// aside, waiting at most wait for each (a session may still be in a
// transaction on their tables).
func dropOldSchemas(ctx context.Context, conn *pgx.Conn, wait time.Duration) error {
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cairn\_old\_%'`)
	if err != nil {
		return fmt.Errorf("look for schemas left by an earlier restore: %w", err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, s := range left {
		if !oldSchemaRE.MatchString(s) {
			continue
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", wait.Milliseconds())); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "DROP SCHEMA "+ident(s)+" CASCADE")
		conn.Exec(context.Background(), "RESET lock_timeout") //nolint:errcheck
		if err != nil {
			return fmt.Errorf("drop the previous schema %s: %w", s, err)
		}
	}
	return nil
}

// moveSchemas returns the SQL that starts the load's transaction: the
// target's schemas renamed aside (aside: the new names, and the schemas
// they were), and an empty public schema with the old one's owner and
// grants (the dump makes its other schemas itself).
func moveSchemas(ctx context.Context, conn *pgx.Conn, owner string, wait time.Duration) (sql string, aside map[string]string, err error) {
	// An extension lives in a schema renamed aside, and the dump's
	// CREATE EXTENSION IF NOT EXISTS would make the new tables use its
	// objects there: dropping that schema would then drop their columns.
	var exts string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(e.extname || ' (in ' || n.nspname || ')', ', '), '') FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'`).Scan(&exts); err != nil {
		return "", nil, fmt.Errorf("list the extensions: %w", err)
	}
	if exts != "" {
		return "", nil, fmt.Errorf("the database has extensions %s, which a restore inside it cannot move (and the user may not create a scratch database beside it). It was left as it was. Try: restore as a role with CREATEDB (ALTER ROLE … CREATEDB)", exts)
	}
	// Large objects belong to the database, not to a schema: they would
	// stay, and collide with the dump's.
	var los int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&los); err != nil {
		return "", nil, fmt.Errorf("count the large objects: %w", err)
	}
	if los > 0 {
		return "", nil, fmt.Errorf("the database holds %d large objects, which a restore inside it cannot replace. It was left as it was. Try: restore as a role with CREATEDB (ALTER ROLE … CREATEDB)", los)
	}
	// Renaming a schema takes its owner.
	var foreign string
	if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(nspname || ' (owned by ' || pg_get_userbyid(nspowner) || ')', ', '), '') FROM pg_namespace
		WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND NOT pg_has_role($1, nspowner, 'MEMBER')`, owner).Scan(&foreign); err != nil {
		return "", nil, fmt.Errorf("read the schemas' owners: %w", err)
	}
	if foreign != "" {
		return "", nil, fmt.Errorf("schemas %s belong to another role than the database's owner %s, so a restore inside it cannot move them. It was left as it was. Try: ALTER SCHEMA … OWNER TO %s (or to pg_database_owner for public), or restore as a role with CREATEDB", foreign, owner, owner)
	}
	rows, err := conn.Query(ctx, `SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace
		WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY nspname`)
	if err != nil {
		return "", nil, fmt.Errorf("list the schemas: %w", err)
	}
	type schema struct{ name, owner string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (schema, error) {
		var s schema
		return s, r.Scan(&s.name, &s.owner)
	})
	if err != nil {
		return "", nil, err
	}
	aside = map[string]string{}
	tag := make([]byte, 4)
	rand.Read(tag) //nolint:errcheck
	var b strings.Builder
	fmt.Fprintf(&b, "BEGIN;\nSET ROLE %s;\nSET lock_timeout = %d;\n", ident(owner), wait.Milliseconds())
	publicOwner := owner
	for i, s := range list {
		if s.name == "public" {
			publicOwner = s.owner
		}
		to := fmt.Sprintf("cairn_old_%s_%d", hex.EncodeToString(tag), i)
		aside[to] = s.name
		fmt.Fprintf(&b, "ALTER SCHEMA %s RENAME TO %s;\n", ident(s.name), ident(to))
	}
	fmt.Fprintf(&b, "CREATE SCHEMA public AUTHORIZATION %s;\n", ident(publicOwner))
	grants, err := conn.Query(ctx, `SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, a.is_grantable
		FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public' AND a.grantee <> n.nspowner`)
	if err != nil {
		return "", nil, fmt.Errorf("read the grants on schema public: %w", err)
	}
	for grants.Next() {
		var priv, to string
		var option bool
		if err := grants.Scan(&priv, &to, &option); err != nil {
			grants.Close()
			return "", nil, err
		}
		with := ""
		if option {
			with = " WITH GRANT OPTION"
		}
		fmt.Fprintf(&b, "GRANT %s ON SCHEMA public TO %s%s;\n", priv, to, with)
	}
	grants.Close()
	b.WriteString("RESET lock_timeout;\n")
	return b.String(), aside, grants.Err()
}

// statsSQL reports, in the load's transaction, every new table's rows and
// checksum (as Stats computes them), and the transaction's xid (every row
// loaded has it as its xmin), as notices, which psql writes to stderr at
// once; the last notice is the marker alone.
var statsSQL = `SET client_min_messages = notice;
DO $cairn$
DECLARE r record; n bigint; s text;
BEGIN
  FOR r IN SELECT format('%%I.%%I', ns.nspname, c.relname) AS q, ` + nameSQL("ns", "c") + ` AS name, pg_total_relation_size(c.oid) AS size
    FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname NOT LIKE 'pg_toast%%'
      AND ns.nspname !~ '^cairn_old_[0-9a-f]{8}_[0-9]+$'
    ORDER BY 2
  LOOP
    IF r.size <= %d THEN
      EXECUTE 'SELECT count(*), ' || %s || ' FROM ONLY ' || r.q || ' r' INTO n, s;
    ELSE
      EXECUTE 'SELECT count(*), '''' FROM ONLY ' || r.q INTO n, s;
    END IF;
    RAISE NOTICE '%s %%', json_build_object('name', r.name, 'rows', n, 'sum', s, 'xid', (txid_current() %% 4294967296)::text);
  END LOOP;
  RAISE NOTICE '%s';
END
$cairn$;
`

// startLoad runs psql on c with prologue, the dump and the stats, and
// returns the stats once psql printed them; done then ends the
// transaction (COMMIT or ROLLBACK) and waits for psql.
func startLoad(ctx context.Context, psql string, c Config, prologue string, dump io.ReadCloser, marker string) (got []cairn.TableStat, prints map[string]string, commit string, done func(string) error, err error) {
	pass, err := passFile(c)
	if err != nil {
		dump.Close()
		return nil, nil, "", nil, fmt.Errorf("load into %s: %w", c, err)
	}
	cmd := exec.CommandContext(ctx, psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", "--file=-")
	cmd.Env, cmd.Stdout, cmd.ExtraFiles = toolEnv(c), io.Discard, []*os.File{pass}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		pass.Close()
		dump.Close()
		return nil, nil, "", nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		pass.Close()
		dump.Close()
		return nil, nil, "", nil, err
	}
	if err := cmd.Start(); err != nil {
		pass.Close()
		dump.Close()
		return nil, nil, "", nil, fmt.Errorf("load into %s: %w", c, err)
	}
	pass.Close()
	wrote := make(chan error, 1)
	go func() {
		defer dump.Close()
		// psql waits for more of a statement, or of a COPY, that a cut
		// dump leaves open: the dump must be whole before the stats follow
		// it, or psql is stopped.
		whole := &tail{r: &oneTransaction{r: bufio.NewReaderSize(dump, 1<<20)}}
		_, err := io.Copy(stdin, io.MultiReader(strings.NewReader(prologue), whole, whole.check(), strings.NewReader(fmt.Sprintf(statsSQL, ChecksumLimit, literal(rowSum), marker, marker))))
		if err != nil {
			cmd.Process.Kill() //nolint:errcheck // the load's transaction is rolled back with its connection
		}
		wrote <- err
	}()
	prints = map[string]string{}
	lines := bufio.NewScanner(stderr)
	lines.Buffer(make([]byte, 64<<10), 16<<20)
	var msgs []string
	ended := false
	for !ended && lines.Scan() {
		line := lines.Text()
		_, rest, ok := strings.Cut(line, "NOTICE:  "+marker)
		switch {
		case !ok:
			if msgs = append(msgs, line); len(msgs) > 20 {
				msgs = msgs[1:] // the last lines say what failed
			}
		case rest == "":
			ended = true
		default:
			var s struct {
				Name string `json:"name"`
				Rows int64  `json:"rows"`
				Sum  string `json:"sum"`
				Xid  string `json:"xid"`
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(rest)), &s); err != nil {
				ended = true
				msgs = append(msgs, "cannot read the stats: "+err.Error())
				break
			}
			got = append(got, cairn.TableStat{Name: s.Name, Rows: s.Rows, Checksum: s.Sum})
			// The table's fingerprint (see fingerprints) once committed.
			g := xminCounts{}
			if s.Rows > 0 {
				g[s.Xid] = s.Rows
			}
			prints[s.Name] = g.print()
		}
	}
	finish := func(stmt string) error {
		_, err := io.WriteString(stdin, stmt+";\n")
		stdin.Close()
		go io.Copy(io.Discard, stderr) //nolint:errcheck // notices after the stats
		if werr := cmd.Wait(); werr != nil {
			return fmt.Errorf("psql: %w: %s", werr, strings.Join(msgs, "; "))
		}
		return err
	}
	if !ended {
		stdin.Close()
		werr := cmd.Wait()
		if ctx.Err() != nil {
			return nil, nil, "", nil, ctx.Err()
		}
		if e := <-wrote; e != nil {
			werr = e
		}
		return nil, nil, "", nil, fmt.Errorf("load into %s with psql: %w%s (nothing was changed: the load's transaction is rolled back)", c, errors.Join(werr, errors.New(strings.Join(msgs, "; "))), hint(strings.Join(msgs, " ")))
	}
	if e := <-wrote; e != nil {
		finish("ROLLBACK") //nolint:errcheck
		return nil, nil, "", nil, e
	}
	return got, prints, "COMMIT", finish, nil
}

// dumpEnd is the line that ends every pg_dump plain dump.
const dumpEnd = "-- PostgreSQL database dump complete"

// tail reads r, keeping its last bytes.
type tail struct {
	r    io.Reader
	last []byte
}

func (t *tail) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.last = append(t.last, p[:n]...)
	if len(t.last) > 4096 {
		t.last = append(t.last[:0], t.last[len(t.last)-1024:]...)
	}
	return n, err
}

// check is a reader that fails when what t read did not end as a whole
// dump does (or as what cairn writes to follow one: see cairnEnd).
func (t *tail) check() io.Reader {
	return readerFunc(func([]byte) (int, error) {
		last := string(t.last)
		end := strings.LastIndex(last, dumpEnd+"\n")
		if !strings.HasSuffix(last, cairnEnd+"\n") && (end < 0 || strings.Contains(last[end:], cairnStart)) {
			return 0, errors.New("the dump is cut short (its last line is not pg_dump's \"" + dumpEnd + "\"). Try: restore another snapshot, and check the disk or storage that held this one")
		}
		return 0, io.EOF
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// oneTransaction passes a dump through, and fails at a line that would end
// or start a transaction of its own at the top level (pg_dump writes
// large objects so: BEGIN; lo_open …; COMMIT;), or that makes a large
// object: a restore inside the database is one transaction, which such a
// line would commit half-way.
type oneTransaction struct {
	r      *bufio.Reader
	buf    []byte
	err    error
	inCopy bool
	text   sqlText // a line inside a literal is no statement of its own
	copies copyLines
}

func (o *oneTransaction) Read(p []byte) (int, error) {
	for len(o.buf) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		line, err := o.r.ReadBytes('\n')
		o.err = err
		if cerr := o.check(line); cerr != nil {
			o.err = cerr
			return 0, cerr
		}
		o.buf = line
	}
	n := copy(p, o.buf)
	o.buf = o.buf[n:]
	return n, nil
}

func (o *oneTransaction) check(line []byte) error {
	l := strings.TrimRight(string(line), "\r\n")
	lit := o.text.literal()
	if !o.inCopy {
		o.text.write(line)
		if !lit || o.copies.open() {
			whole, done := o.copies.take([]byte(strings.TrimSuffix(string(line), "\n")))
			if !done {
				return nil
			}
			l, lit = strings.TrimRight(string(whole), "\r\n"), false
		}
	}
	switch {
	case o.inCopy:
		o.inCopy = l != `\.`
	case lit:
	case strings.HasPrefix(l, "COPY ") && strings.HasSuffix(l, "FROM stdin;"):
		o.inCopy = true
	case l == "BEGIN;" || l == "COMMIT;" || l == "ROLLBACK;" || l == "END;" || strings.HasPrefix(l, "START TRANSACTION"),
		strings.HasPrefix(l, "SELECT pg_catalog.lo_create(") || strings.HasPrefix(l, "SELECT pg_catalog.lo_open("):
		return errors.New("the dump holds large objects (or transactions of its own), which a restore inside the database cannot take in its one transaction; nothing was changed. Try: restore as a role with CREATEDB (ALTER ROLE … CREATEDB)")
	}
	return nil
}
