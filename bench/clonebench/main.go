// Command clonebench measures `cairn clone` against the hand pipeline it
// replaces, in one run, on a generated site (files and a WordPress-style
// MariaDB database): `rsync -a --delete` for the files and
// `mariadb-dump --single-transaction --quick | sed | mariadb` for the
// database. It takes the first clone several times (rounds), each onto an
// empty staging, the pipeline and cairn taking turns to go first, and
// reports the median; then it clones twice more, each time after changing
// 1% of the files and another 1% of the rows. Every timed step starts
// once the steps before it are on disk (see quiesce).
//
//	go run ./bench/clonebench [-files 1024] [-db 500] [-rounds 3] [-keep]
//
// It needs MariaDB at 127.0.0.1:3306 (root, no password), mariadb-client
// and rsync. Its databases are dropped at the end.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-backup/cairn/bench/internal/measure"
)

func main() {
	filesMB := flag.Int("files", 1024, "site files in MiB")
	dbMB := flag.Int("db", 500, "database dump size in MiB")
	keep := flag.Bool("keep", false, "keep the work directory and databases")
	rounds := flag.Int("rounds", 3, "first clones to take (each onto an empty staging); the median is reported")
	flag.Parse()
	if err := run(*filesMB, *dbMB, *rounds, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "clonebench:", err)
		os.Exit(1)
	}
}

const from, to = "https://example.com", "https://staging.example.com"

func run(filesMB, dbMB, rounds int, keep bool) error {
	work, bin, cleanup, err := measure.Workdir("clonebench", keep)
	if err != nil {
		return err
	}
	defer cleanup()
	root, err := measure.MariaDB("")
	if err != nil {
		return err
	}
	defer root.Close()
	id := make([]byte, 4)
	rand.Read(id) //nolint:errcheck
	prefix := "cairn_clone_" + hex.EncodeToString(id)
	newDB := func(name string) (string, error) {
		db := prefix + "_" + name
		_, err := root.Exec("CREATE DATABASE " + db + " CHARACTER SET utf8mb4")
		return db, err // dropped at the end, with the others
	}
	defer func() {
		if !keep {
			rows, err := root.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", prefix+"\\_%")
			if err != nil {
				return
			}
			var dbs []string
			for rows.Next() {
				var db string
				rows.Scan(&db) //nolint:errcheck
				dbs = append(dbs, db)
			}
			rows.Close()
			for _, db := range dbs {
				root.Exec("DROP DATABASE IF EXISTS " + db) //nolint:errcheck
			}
		}
	}()
	prodDB, err := newDB("prod")
	if err != nil {
		return err
	}
	prod := filepath.Join(work, "prod")
	fmt.Fprintf(os.Stderr, "generating %d MiB of files and a %d MiB database…\n", filesMB, dbMB)
	if err := generateTree(prod, filesMB); err != nil {
		return err
	}
	rows, err := generateDB(prodDB, dbMB)
	if err != nil {
		return err
	}

	// A round is a first clone onto an empty staging (a new repository,
	// directory and database each time) and the hand pipeline onto an
	// empty copy, in turn first and second from one round to the next.
	newRound := func(n int) (*round, error) {
		stageDB, err := newDB(fmt.Sprintf("stage%d", n))
		if err != nil {
			return nil, err
		}
		handDB, err := newDB(fmt.Sprintf("hand%d", n))
		if err != nil {
			return nil, err
		}
		stage, hand := filepath.Join(work, fmt.Sprintf("stage%d", n)), filepath.Join(work, fmt.Sprintf("hand%d", n))
		measure.Must(os.MkdirAll(stage, 0o755))
		measure.Must(os.MkdirAll(hand, 0o755))
		cfg := filepath.Join(work, fmt.Sprintf("cairn%d.yaml", n))
		measure.Must(os.WriteFile(cfg, []byte(fmt.Sprintf(`repository: {path: %s}
sites:
  bench:
    environments:
      production:
        url: %s
        files: %s
        databases: ["mysql://root@127.0.0.1:3306/%s"]
      staging:
        url: %s
        files: %s
        databases: ["mysql://root@127.0.0.1:3306/%s"]
`, filepath.Join(work, fmt.Sprintf("repo%d", n)), from, prod, prodDB, to, stage, stageDB)), 0o644))
		r := &round{bin: bin, env: append(os.Environ(), "CAIRN_PASSWORD=bench", "CAIRN_CONFIG="+cfg, "HOME="+filepath.Join(work, "home"))}
		r.hand = func() (measure.Result, error) {
			sh := fmt.Sprintf("rsync -a --delete %s/ %s/ && mariadb-dump --single-transaction --quick --routines --triggers --events --hex-blob -uroot -h127.0.0.1 %s | sed 's#%s#%s#g' | mariadb --max-allowed-packet=1G -uroot -h127.0.0.1 %s",
				prod, hand, prodDB, from, to, handDB)
			quiesce()
			return measure.Timed(exec.Command("sh", "-c", sh))
		}
		_, err = r.run("init")
		return r, err
	}

	var c1s, h1s []measure.Result
	var last *round
	for n := 1; n <= rounds; n++ {
		fmt.Fprintf(os.Stderr, "first clone, round %d of %d…\n", n, rounds)
		r, err := newRound(n)
		if err != nil {
			return err
		}
		first, second := r.hand, r.cairn
		if n%2 == 0 {
			first, second = r.cairn, r.hand
		}
		a, err := first()
		if err != nil {
			return err
		}
		b, err := second()
		if err != nil {
			return err
		}
		if n%2 == 0 {
			a, b = b, a
		}
		h1s, c1s = append(h1s, a), append(c1s, b)
		last = r
	}
	// Later clones, on the last round's staging: 1% more changed each
	// time (a weekly refresh); the third shows the steady state, where
	// staging's safety snapshot finds most of its dump stored already.
	var cs, hs []measure.Result
	for n := 1; n <= 2; n++ {
		fmt.Fprintln(os.Stderr, "changing 1% of files and rows…")
		if err := changeTree(prod); err != nil {
			return err
		}
		if _, err := root.Exec(fmt.Sprintf("UPDATE %s.wp_posts SET post_content = CONCAT(post_content, ' (edited)') WHERE ID > %d AND ID <= %d", prodDB, rows-rows/100*n, rows-rows/100*(n-1))); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "clone", n+1, "…")
		h, err := last.hand()
		if err != nil {
			return err
		}
		c, err := last.cairn()
		if err != nil {
			return err
		}
		cs, hs = append(cs, c), append(hs, h)
	}

	fmt.Printf("\nsite: %d MiB of files, %d MiB database (%d posts)\n\n", filesMB, dbMB, rows)
	fmt.Println("| clone | cairn clone | rsync + dump \\| sed \\| load | ratio | cairn / its first (median) | peak RSS cairn |")
	fmt.Println("|---|---|---|---|---|---|")
	var ratios []float64
	for i := range c1s {
		ratios = append(ratios, c1s[i].Wall.Seconds()/h1s[i].Wall.Seconds())
	}
	sort.Float64s(ratios)
	firstMedian := measure.Median(c1s).Wall.Seconds()
	row := func(name string, c, h measure.Result) {
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f× | %.2f× | %d MiB |\n", name, c.Wall.Seconds(), h.Wall.Seconds(), c.Wall.Seconds()/h.Wall.Seconds(), c.Wall.Seconds()/firstMedian, c.RSS/1024)
	}
	for i := range c1s {
		row(fmt.Sprintf("first, round %d", i+1), c1s[i], h1s[i])
	}
	row("second, 1% changed", cs[0], hs[0])
	row("third, 1% more changed", cs[1], hs[1])
	fmt.Printf("\nfirst clone: median ratio %.2f× over %d rounds (cairn median %.2f s)\n\n", ratios[len(ratios)/2], len(ratios), firstMedian)
	for i, c := range append(c1s, cs...) {
		fmt.Printf("cairn clone %d: stages %s; database: %s\n", i+1, stages(c.Out), databaseLine(c.Out))
	}
	return nil
}

// quiesce waits, before a timed step, for the writes of the steps before
// it to be on disk: the page cache's (a sync) and MariaDB's (the dirty
// pages of its buffer pool, which it otherwise flushes at its leisure,
// for a minute after a 500 MiB load, while the next step runs). Without
// it, each step pays for the one before (the pipeline for cairn's load,
// cairn for the pipeline's). MariaDB is made to flush them at once
// (innodb_max_dirty_pages_pct 0) and given its setting back.
func quiesce() {
	syscall.Sync()
	db, err := measure.MariaDB("")
	if err != nil {
		return
	}
	defer db.Close()
	var pct string
	if db.QueryRow("SELECT @@GLOBAL.innodb_max_dirty_pages_pct").Scan(&pct) != nil {
		return
	}
	db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = 0")            //nolint:errcheck
	defer db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = " + pct) //nolint:errcheck
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var name string
		var dirty int
		if db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty) != nil || dirty < 100 {
			break
		}
	}
	syscall.Sync()
}

// round is one staging (repository, directory and database) and one copy
// by hand, each cloned onto from production.
type round struct {
	bin  string
	env  []string // cairn's, with the round's configuration
	hand func() (measure.Result, error)
}

// run runs cairn, once all is quiet (see quiesce).
func (r *round) run(args ...string) (measure.Result, error) {
	quiesce()
	c := exec.Command(r.bin, append([]string{"--no-progress"}, args...)...)
	c.Env = r.env
	return measure.Timed(c)
}

func (r *round) cairn() (measure.Result, error) {
	return r.run("clone", "bench/production", "bench/staging", "--json")
}

// databaseLine reads how the database went in from clone's --json output.
func databaseLine(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		var db struct {
			MessageType string  `json:"message_type"`
			Seconds     float64 `json:"duration_seconds"`
			Delta       *struct {
				Removed int `json:"rows_removed"`
				Added   int `json:"rows_added"`
			} `json:"delta"`
		}
		if json.Unmarshal([]byte(line), &db) != nil || db.MessageType != "database" {
			continue
		}
		if db.Delta != nil {
			return fmt.Sprintf("delta, %d rows out and %d in, %.2f s", db.Delta.Removed, db.Delta.Added, db.Seconds)
		}
		return fmt.Sprintf("whole dump, %.2f s", db.Seconds)
	}
	return "?"
}

// stages reads the seconds per stage from clone's --json summary.
func stages(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct {
		Seconds map[string]float64 `json:"seconds"`
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], `"clone_summary"`) && json.Unmarshal([]byte(lines[i]), &sum) == nil {
			break
		}
	}
	names := make([]string, 0, len(sum.Seconds))
	for k := range sum.Seconds {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s %.2f s; ", k, sum.Seconds[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which but have
site page post theme plugin garden river bread bicycle morning evening market village harbour mountain window letter kitchen`)

// generateTree writes PHP-like text files (a third of the bytes) and
// incompressible media (the rest), about 25 files per MiB.
func generateTree(dir string, sizeMB int) error {
	rng := mrand.New(mrand.NewSource(7))
	total := int64(sizeMB) << 20
	buf := make([]byte, 128<<10)
	for i, written := 0, int64(0); written < total; i++ {
		var data []byte
		name := fmt.Sprintf("wp-content/d%03d/f%05d", i%200, i)
		if i%3 == 0 {
			rng.Read(buf[:16<<10+rng.Intn(96<<10)])
			data, name = buf[:16<<10+rng.Intn(96<<10)], name+".jpg"
		} else {
			var b strings.Builder
			b.WriteString("<?php // https://example.com\n")
			for b.Len() < 2048+rng.Intn(6144) {
				b.WriteString(words[rng.Intn(len(words))] + " ")
			}
			data, name = []byte(b.String()), name+".php"
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		written += int64(len(data))
	}
	return nil
}

// changeTree edits 1% of the files.
func changeTree(dir string) error {
	n := 0
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if n++; n%100 == 0 {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteString("\n// edited\n"); err != nil {
				return err
			}
			return f.Close()
		}
		return nil
	})
}

// generateDB fills db with posts (~1 KiB of dump each, links in half).
func generateDB(db string, sizeMB int) (int, error) {
	conn, err := measure.MariaDB(db)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Exec(`CREATE TABLE wp_posts (ID bigint unsigned PRIMARY KEY AUTO_INCREMENT, post_content longtext, guid varchar(255)) CHARACTER SET utf8mb4`); err != nil {
		return 0, err
	}
	posts := sizeMB * 1024 * 1024 / 1100
	rng := mrand.New(mrand.NewSource(1))
	var q strings.Builder
	for i := 1; i <= posts; i++ {
		if q.Len() == 0 {
			q.WriteString("INSERT INTO wp_posts (post_content, guid) VALUES ")
		} else {
			q.WriteByte(',')
		}
		var body strings.Builder
		if i%2 == 0 {
			fmt.Fprintf(&body, `<a href=\"%s/%d/\">link</a>`, from, i)
		}
		for body.Len() < 1000 {
			body.WriteString(" " + words[rng.Intn(len(words))])
		}
		fmt.Fprintf(&q, "('%s','%s/?p=%d')", body.String(), from, i)
		if q.Len() > 4<<20 || i == posts {
			if _, err := conn.Exec(q.String()); err != nil {
				return 0, err
			}
			q.Reset()
		}
	}
	return posts, nil
}
