// Command pgdbbench measures cairn's PostgreSQL snapshots and restores
// against PostgreSQL's own tools on a generated WordPress-style database,
// in one run, alternating, medians of -runs:
//
//   - snapshot: `cairn snapshot` (a new repository each run) against
//     `pg_dump DB | zstd -1 >/dev/null`, `pg_dump -Fd -j N -Z 0` and
//     `pg_dump -Fd -j N` (compressed, as it is by default: gzip);
//   - restore: `cairn restore --only db` into a new database against
//     `psql -f dump.sql` and `pg_restore -j N` of each directory dump
//     (cairn's snapshot is compressed: the uncompressed directory is
//     the stricter peer, the default one the comparable one);
//   - clone: `cairn clone` of the database onto a new one (URLs
//     rewritten), then, after 1% of the rows changed, a second clone
//     (row by row), against the first.
//
// N is the number of cores.
//
//	go run ./bench/pgdbbench [-size 1024] [-runs 3] [-tables 2|4] [-keep]
//
// -tables 4 moves the newer half of the posts into wp_comments and adds a
// small wp_options, as dbbench's -tables 4 does: tables of more even
// sizes, as a real site has, where loads on several connections help
// (with 2, wp_posts is some 93% of the rows' bytes).
//
// It needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust), pg_dump,
// pg_restore, psql and zstd. The databases it makes are dropped at the end
// (but with -keep).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-backup/cairn/bench/internal/measure"
)

func main() {
	sizeMB := flag.Int("size", 1024, "approximate dump size in MiB")
	runs := flag.Int("runs", 3, "times each timed step runs; medians are shown")
	keep := flag.Bool("keep", false, "keep the work directory and the database")
	flag.IntVar(&tables, "tables", 2, "2: wp_posts and wp_postmeta; 4: the newer half of the posts in wp_comments, and a small wp_options")
	flag.Parse()
	if err := run(*sizeMB, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "pgdbbench:", err)
		os.Exit(1)
	}
}

const server = "postgres://postgres@127.0.0.1:5432/"

// tables is how many tables the database generated has (-tables).
var tables int

func run(sizeMB, runs int, keep bool) error {
	work, cairnBin, cleanup, err := measure.Workdir("pgdbbench", keep)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server+"postgres?sslmode=disable")
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	id := make([]byte, 4)
	rand.Read(id) //nolint:errcheck
	src := "cairn_pgbench_" + hex.EncodeToString(id)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+src); err != nil {
		return err
	}
	var made []string
	defer func() {
		if keep {
			return
		}
		for _, db := range append(made, src) {
			admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") //nolint:errcheck
		}
	}()
	fmt.Fprintf(os.Stderr, "generating ~%d MiB in %s…\n", sizeMB, src)
	if err := generate(ctx, src, sizeMB); err != nil {
		return err
	}
	threads := fmt.Sprint(runtime.NumCPU())
	env := append(os.Environ(), "PGHOST=127.0.0.1", "PGUSER=postgres")
	sh := func(script string) (measure.Result, error) {
		c := exec.Command("bash", "-o", "pipefail", "-c", script)
		c.Env = env
		return measure.Timed(c)
	}
	dumpFile, dumpDir, gzDir := filepath.Join(work, "dump.sql"), filepath.Join(work, "dumpdir"), filepath.Join(work, "dumpdir.gz")
	if _, err := sh("pg_dump " + src + " >" + dumpFile); err != nil {
		return err
	}
	st, _ := os.Stat(dumpFile)
	fresh := func(i int) ([]string, error) {
		dir := filepath.Join(work, fmt.Sprint("run", i))
		cfg := filepath.Join(dir, "cairn.yaml")
		measure.Must(os.MkdirAll(filepath.Join(dir, "site"), 0o755))
		measure.Must(os.WriteFile(cfg, []byte(fmt.Sprintf("repository: {path: %s}\nsites:\n  bench:\n    environments:\n      db:\n        files: %s\n        databases: [\"%s%s?sslmode=disable\"]\n",
			filepath.Join(dir, "repo"), filepath.Join(dir, "site"), server, src)), 0o644))
		e := append(os.Environ(), "CAIRN_PASSWORD=bench", "CAIRN_CONFIG="+cfg, "HOME="+filepath.Join(dir, "home"))
		c := exec.Command(cairnBin, "init")
		c.Env = e
		if out, err := c.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("cairn init: %v: %s", err, out)
		}
		return e, nil
	}
	var cairnEnv []string
	cairn := func(args ...string) (measure.Result, error) {
		c := exec.Command(cairnBin, append([]string{"--no-progress"}, args...)...)
		c.Env = cairnEnv
		return measure.Timed(c)
	}
	var snaps, dumps, dirDumps, gzDumps, restores, psqls, pgRestores, gzRestores []measure.Result
	step := func(out *[]measure.Result, r measure.Result, err error) error {
		*out = append(*out, r)
		return err
	}
	for i := range runs {
		fmt.Fprintf(os.Stderr, "snapshot run %d/%d…\n", i+1, runs)
		if cairnEnv, err = fresh(i); err != nil {
			return err
		}
		r, err := cairn("snapshot", "bench/db")
		if err := step(&snaps, r, err); err != nil {
			return err
		}
		r, err = sh("pg_dump " + src + " | zstd -1 -q >/dev/null")
		if err := step(&dumps, r, err); err != nil {
			return err
		}
		os.RemoveAll(dumpDir)
		r, err = sh("pg_dump -Fd -j " + threads + " -Z 0 -f " + dumpDir + " " + src)
		if err := step(&dirDumps, r, err); err != nil {
			return err
		}
		os.RemoveAll(gzDir)
		r, err = sh("pg_dump -Fd -j " + threads + " -f " + gzDir + " " + src)
		if err := step(&gzDumps, r, err); err != nil {
			return err
		}
	}
	for i := range runs {
		fmt.Fprintf(os.Stderr, "restore run %d/%d…\n", i+1, runs)
		for _, s := range []struct {
			out *[]measure.Result
			run func(db string) (measure.Result, error)
		}{
			{&restores, func(db string) (measure.Result, error) {
				return cairn("restore", "bench/db@latest", "--only", "db", "--database", server+db+"?sslmode=disable")
			}},
			{&psqls, func(db string) (measure.Result, error) {
				return sh("createdb " + db + " && psql -q -o /dev/null -f " + dumpFile + " " + db)
			}},
			{&pgRestores, func(db string) (measure.Result, error) {
				return sh("createdb " + db + " && pg_restore -j " + threads + " -d " + db + " " + dumpDir)
			}},
			{&gzRestores, func(db string) (measure.Result, error) {
				return sh("createdb " + db + " && pg_restore -j " + threads + " -d " + db + " " + gzDir)
			}},
		} {
			db := fmt.Sprintf("%s_r%d_%d", src, i, len(*s.out))
			made = append(made, db)
			r, err := s.run(db)
			if err := step(s.out, r, err); err != nil {
				return err
			}
			admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") //nolint:errcheck
		}
	}
	var firsts, seconds []measure.Result
	for i := range runs {
		fmt.Fprintf(os.Stderr, "clone run %d/%d…\n", i+1, runs)
		stage := fmt.Sprintf("%s_c%d", src, i)
		made = append(made, stage)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+stage); err != nil {
			return err
		}
		if cairnEnv, err = freshClone(work, i, cairnBin, src, stage); err != nil {
			return err
		}
		r, err := cairn("clone", "bench/production", "bench/staging")
		if err := step(&firsts, r, err); err != nil {
			return err
		}
		if err := change(ctx, src, i); err != nil {
			return err
		}
		r, err = cairn("clone", "bench/production", "bench/staging")
		if err := step(&seconds, r, err); err != nil {
			return err
		}
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+stage+" WITH (FORCE)") //nolint:errcheck
	}
	fmt.Printf("\nPostgreSQL database %s: %d tables, dump %.1f MiB; medians of %d runs\n\n", src, tables, float64(st.Size())/(1<<20), runs)
	fmt.Println("| step | cairn | peer | ratio | peak RSS cairn |")
	fmt.Println("|---|---|---|---|---|")
	row := func(name string, cs, ps []measure.Result) {
		c, p := measure.Median(cs), measure.Median(ps)
		fmt.Printf("| %s | %s | %s | %.2f× | %d MiB |\n", name, measure.Walls(cs), measure.Walls(ps), c.Wall.Seconds()/p.Wall.Seconds(), measure.MaxRSS(cs)/1024)
	}
	row("snapshot vs `pg_dump | zstd -1`", snaps, dumps)
	row("snapshot vs `pg_dump -Fd -j "+threads+" -Z 0`", snaps, dirDumps)
	row("snapshot vs `pg_dump -Fd -j "+threads+"` (gzip)", snaps, gzDumps)
	row("restore vs `psql -f dump.sql`", restores, psqls)
	row("restore vs `pg_restore -j "+threads+"` of `-Z 0`", restores, pgRestores)
	row("restore vs `pg_restore -j "+threads+"` of the gzip dump", restores, gzRestores)
	row("second clone (1% of rows changed) vs the first", seconds, firsts)
	return nil
}

// freshClone makes run i's repository and configuration for a clone of
// src onto stage, and returns the environment to run cairn in.
func freshClone(work string, i int, cairnBin, src, stage string) ([]string, error) {
	dir := filepath.Join(work, fmt.Sprint("clone", i))
	cfg := filepath.Join(dir, "cairn.yaml")
	for _, d := range []string{"prod", "stage"} {
		measure.Must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	measure.Must(os.WriteFile(cfg, []byte(fmt.Sprintf(`repository: {path: %s}
sites:
  bench:
    environments:
      production:
        url: https://example.com
        files: %s
        databases: ["%s%s?sslmode=disable"]
      staging:
        url: https://staging.example.com
        files: %s
        databases: ["%s%s?sslmode=disable"]
`, filepath.Join(dir, "repo"), filepath.Join(dir, "prod"), server, src, filepath.Join(dir, "stage"), server, stage)), 0o644))
	e := append(os.Environ(), "CAIRN_PASSWORD=bench", "CAIRN_CONFIG="+cfg, "HOME="+filepath.Join(dir, "home"))
	c := exec.Command(cairnBin, "init")
	c.Env = e
	if out, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cairn init: %v: %s", err, out)
	}
	return e, nil
}

// change edits 1% of db's posts (in wp_comments too) and their meta (a
// different 1% each run).
func change(ctx context.Context, db string, run int) error {
	conn, err := pgx.Connect(ctx, server+db+"?sslmode=disable")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	queries := []string{
		fmt.Sprintf(`UPDATE wp_posts SET post_title = post_title || ' (edited)', post_modified = now() WHERE id %% 100 = %d`, run),
		fmt.Sprintf(`UPDATE wp_postmeta SET meta_value = meta_value || ' ' WHERE post_id %% 100 = %d`, run),
	}
	if tables == 4 {
		queries = append(queries, fmt.Sprintf(`UPDATE wp_comments SET post_title = post_title || ' (edited)', post_modified = now() WHERE id %% 100 = %d`, run))
	}
	for _, q := range queries {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// generate fills db with WordPress-like posts (about 1 KiB of prose
// each) and their meta, about sizeMB of dump.
func generate(ctx context.Context, db string, sizeMB int) error {
	conn, err := pgx.Connect(ctx, server+db+"?sslmode=disable")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	posts := sizeMB * 1024 * 1024 / 1150
	queries := []string{
		`CREATE TABLE wp_posts (id bigint PRIMARY KEY, post_author bigint, post_date timestamptz, post_content text, post_title text,
			post_name varchar(200), post_modified timestamptz, guid varchar(255))`,
		`CREATE TABLE wp_postmeta (meta_id bigint PRIMARY KEY, post_id bigint, meta_key varchar(255), meta_value text)`,
		`CREATE INDEX wp_postmeta_post_id ON wp_postmeta (post_id)`,
		`CREATE TABLE words AS SELECT unnest(string_to_array('function return array echo post query if else foreach add_action apply_filters enqueue script get_option update_option esc_html class public private static const var let document window selector listener margin padding color display flex grid the of and to in is that it for on with as was at by', ' ')) AS w`,
		fmt.Sprintf(`INSERT INTO wp_posts SELECT g, 1 + g %% 7, timestamptz '2020-01-01' + g * interval '1 minute',
			'<!-- wp:paragraph --><p>See <a href="https://example.com/' || g || '/">this</a>. ' ||
			(SELECT string_agg(w, ' ') FROM (SELECT w FROM words ORDER BY random() + g * 0 LIMIT 40) x) || ' ' ||
			(SELECT string_agg(w, ' ') FROM (SELECT w FROM words ORDER BY random() + g * 0 LIMIT 40) x) || ' ' ||
			(SELECT string_agg(w, ' ') FROM (SELECT w FROM words ORDER BY random() + g * 0 LIMIT 40) x) || '</p><!-- /wp:paragraph -->',
			'Post ' || g, 'post-' || g, timestamptz '2020-01-01' + g * interval '1 minute', 'https://example.com/?p=' || g
			FROM generate_series(1, %d) g`, posts),
		`INSERT INTO wp_postmeta SELECT id, id, '_meta', 'a:1:{s:3:"url";s:' || length('https://example.com/' || id || '/') || ':"https://example.com/' || id || '/";}' FROM wp_posts`,
		`DROP TABLE words`,
	}
	if tables == 4 {
		half := posts / 2
		queries = append(queries,
			`CREATE TABLE wp_comments (LIKE wp_posts INCLUDING ALL)`,
			fmt.Sprintf(`INSERT INTO wp_comments SELECT * FROM wp_posts WHERE id > %d`, half),
			fmt.Sprintf(`DELETE FROM wp_posts WHERE id > %d`, half),
			`CREATE TABLE wp_options (option_id bigint PRIMARY KEY, option_name varchar(191) UNIQUE, option_value text)`,
			`INSERT INTO wp_options SELECT g, 'opt' || g, repeat('v', 500) FROM generate_series(1, 2000) g`,
			`VACUUM FULL wp_posts`)
	}
	for _, q := range append(queries, `VACUUM ANALYZE`) {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%.60s…: %w", q, err)
		}
	}
	return nil
}
