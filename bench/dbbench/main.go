// Command dbbench measures cairn's database snapshots and restores against
// the hand pipeline on a generated WordPress-style MariaDB database, in one
// run: wall time, peak memory, and what a second snapshot adds to the
// repository (unchanged; after changing 1% of the rows, clustered and
// spread).
//
//	go run ./bench/dbbench [-size 1024] [-runs 3] [-keep] [-db NAME]
//
// It needs MariaDB at 127.0.0.1:3306 (root, no password), mariadb-dump,
// mariadb and zstd; with mydumper and myloader installed (Debian's
// mydumper) it measures them too, with as many threads as cores. The
// database it makes is dropped at the end.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cairn-backup/cairn/bench/internal/measure"
)

func main() {
	sizeMB := flag.Int("size", 1024, "approximate dump size in MiB")
	keep := flag.Bool("keep", false, "keep the work directory and databases")
	reuse := flag.String("db", "", "measure this existing database (made by an earlier -keep run) instead of generating one")
	runs := flag.Int("runs", 3, "times each timed step runs (cairn and peer alternating); medians are shown")
	flag.IntVar(&tables, "tables", 2, "2: wp_posts and wp_postmeta; 4: the newer half of the posts in wp_comments, and a small wp_options")
	flag.Parse()
	if err := run(*sizeMB, *keep, *reuse, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "dbbench:", err)
		os.Exit(1)
	}
}

// tables is how many tables the database generated has (-tables).
var tables int

func run(sizeMB int, keep bool, src string, runs int) error {
	work, cairnBin, cleanup, err := measure.Workdir("dbbench", keep)
	if err != nil {
		return err
	}
	defer cleanup()
	root, err := measure.MariaDB("")
	if err != nil {
		return err
	}
	defer root.Close()
	var rows int
	if src == "" {
		id := make([]byte, 4)
		rand.Read(id) //nolint:errcheck
		src = "cairn_bench_" + hex.EncodeToString(id)
		if _, err := root.Exec("CREATE DATABASE " + src + " CHARACTER SET utf8mb4"); err != nil {
			return err
		}
		if !keep {
			defer root.Exec("DROP DATABASE IF EXISTS " + src) //nolint:errcheck
		}
		fmt.Fprintf(os.Stderr, "generating ~%d MiB in %s…\n", sizeMB, src)
		if rows, err = generate(src, sizeMB); err != nil {
			return err
		}
		if tables == 4 {
			// Tables of more even sizes, as a real site's: where loads
			// on several connections help.
			for _, q := range []string{
				"CREATE TABLE " + src + ".wp_comments LIKE " + src + ".wp_posts",
				fmt.Sprintf("INSERT INTO %s.wp_comments SELECT * FROM %s.wp_posts WHERE ID > %d", src, src, rows/2),
				fmt.Sprintf("DELETE FROM %s.wp_posts WHERE ID > %d", src, rows/2),
				"CREATE TABLE " + src + ".wp_options (option_id BIGINT PRIMARY KEY AUTO_INCREMENT, option_name VARCHAR(191) UNIQUE, option_value LONGTEXT)",
				"INSERT INTO " + src + ".wp_options (option_name, option_value) SELECT CONCAT('opt', seq), REPEAT('v', 500) FROM " + src + ".seq_1_to_2000",
			} {
				if _, err := root.Exec(q); err != nil {
					return err
				}
			}
			rows /= 2
		}
	} else if err := root.QueryRow("SELECT COUNT(*) FROM " + src + ".wp_posts").Scan(&rows); err != nil {
		return err
	}
	scratch := func(suffix string) (string, func(), error) {
		name := src + "_" + suffix
		if _, err := root.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			return "", nil, err
		}
		if _, err := root.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
			return "", nil, err
		}
		return name, func() { root.Exec("DROP DATABASE IF EXISTS " + name) }, nil //nolint:errcheck
	}

	dumpArgs := "--single-transaction --quick --routines --triggers --events --hex-blob --default-character-set=utf8mb4 -uroot -h127.0.0.1"
	dumpFile := filepath.Join(work, "dump.sql")
	if out, err := exec.Command("sh", "-c", "mariadb-dump "+dumpArgs+" "+src+" >"+dumpFile).CombinedOutput(); err != nil {
		return fmt.Errorf("dump: %v: %s", err, out)
	}
	st, _ := os.Stat(dumpFile)
	dumpSize := st.Size()

	// One repository per run of the first snapshot, so every run starts
	// from nothing; the last one goes on to the later steps.
	var repoDir string
	var env []string
	cairn := func(args ...string) (measure.Result, error) {
		c := exec.Command(cairnBin, append([]string{"--no-progress"}, args...)...)
		c.Env = env
		return measure.Timed(c)
	}
	fresh := func(i int) error {
		dir := filepath.Join(work, fmt.Sprint("run", i))
		repoDir = filepath.Join(dir, "repo")
		cfg := filepath.Join(dir, "cairn.yaml")
		measure.Must(os.MkdirAll(filepath.Join(dir, "site"), 0o755))
		measure.Must(os.WriteFile(cfg, []byte(fmt.Sprintf("repository: {path: %s}\nsites:\n  bench:\n    environments:\n      db:\n        files: %s\n        databases: [\"mysql://root@127.0.0.1:3306/%s\"]\n",
			repoDir, filepath.Join(dir, "site"), src)), 0o644))
		env = append(os.Environ(), "CAIRN_PASSWORD=bench", "CAIRN_CONFIG="+cfg, "HOME="+filepath.Join(dir, "home"))
		_, err := cairn("init")
		return err
	}

	// mydumper/myloader, where installed (Debian's mydumper), with the
	// thread count of the machine's cores, as cairn's peers in the same
	// run; its dump compressed (-c, gzip: its only compression in 0.10).
	threads := fmt.Sprint(runtime.NumCPU())
	myDir := filepath.Join(work, "mydumper")
	_, myErr := exec.LookPath("mydumper")
	mydumper := func() (measure.Result, error) {
		os.RemoveAll(myDir)
		return measure.Timed(exec.Command("mydumper", "-h", "127.0.0.1", "-u", "root", "-B", src, "-o", myDir, "-t", threads, "-G", "-E", "-R", "--trx-consistency-only"))
	}
	// mydumper's own compression (gzip) is far slower than cairn's: its
	// files compressed after it by zstd -1 on as many threads are the
	// comparable peer.
	mydumperZstd := func() (measure.Result, error) {
		os.RemoveAll(myDir)
		return measure.Timed(exec.Command("sh", "-c", "mydumper -h 127.0.0.1 -u root -B "+src+" -o "+myDir+" -t "+threads+
			" -G -E -R --trx-consistency-only 2>/dev/null && zstd -q -1 -T"+threads+" --rm "+myDir+"/*.sql"))
	}
	var peerDumps, firsts, peerLoads, restores, myDumps, myZstdDumps, myLoads []measure.Result
	for i := 0; i < runs; i++ {
		fmt.Fprintf(os.Stderr, "snapshot run %d/%d…\n", i+1, runs)
		r, err := measure.Timed(exec.Command("sh", "-c", "mariadb-dump "+dumpArgs+" "+src+" | zstd -1 -q >/dev/null"))
		if err != nil {
			return err
		}
		peerDumps = append(peerDumps, r)
		if myErr == nil {
			if r, err = mydumperZstd(); err != nil {
				return err
			}
			myZstdDumps = append(myZstdDumps, r)
			if r, err = mydumper(); err != nil {
				return err
			}
			myDumps = append(myDumps, r)
		}
		if err := fresh(i); err != nil {
			return err
		}
		if r, err = cairn("snapshot", "bench/db"); err != nil {
			return err
		}
		firsts = append(firsts, r)
	}
	for i := 0; i < runs; i++ {
		fmt.Fprintf(os.Stderr, "restore run %d/%d…\n", i+1, runs)
		peer, drop, err := scratch("peer")
		if err != nil {
			return err
		}
		r, err := measure.Timed(exec.Command("sh", "-c", "mariadb -uroot -h127.0.0.1 --max-allowed-packet=1G "+peer+" <"+dumpFile))
		drop()
		if err != nil {
			return err
		}
		peerLoads = append(peerLoads, r)
		if myErr == nil {
			peer, drop, err := scratch("myloader")
			if err != nil {
				return err
			}
			r, err := measure.Timed(exec.Command("myloader", "-h", "127.0.0.1", "-u", "root", "-d", myDir, "-B", peer, "-t", threads, "-o"))
			drop()
			if err != nil {
				return err
			}
			myLoads = append(myLoads, r)
		}
		dst, drop, err := scratch("cairn")
		if err != nil {
			return err
		}
		r, err = cairn("restore", "bench/db@latest", "--only", "db", "--database", "mysql://root@127.0.0.1:3306/"+dst)
		drop()
		if err != nil {
			return err
		}
		restores = append(restores, r)
	}
	os.Remove(dumpFile)

	// What later snapshots add: unchanged, one row edited, 1% of rows
	// changed clustered (the newest posts), 1% spread (every 100th post).
	size0 := dirSize(repoDir)
	again, err := cairn("snapshot", "bench/db")
	if err != nil {
		return err
	}
	size1 := dirSize(repoDir)
	// One post in the middle edited (it grows by a few bytes).
	if _, err := root.Exec(fmt.Sprintf("UPDATE %s.wp_posts SET post_content = CONCAT(post_content, ' (typo fixed)') WHERE ID = %d", src, rows/2)); err != nil {
		return err
	}
	if _, err := cairn("snapshot", "bench/db"); err != nil {
		return err
	}
	sizeOne := dirSize(repoDir)
	n := rows / 100
	if _, err := root.Exec(fmt.Sprintf("UPDATE %s.wp_posts SET post_content = CONCAT(post_content, ' (edited)'), post_modified = NOW() WHERE ID > %d", src, rows-n)); err != nil {
		return err
	}
	clustered, err := cairn("snapshot", "bench/db")
	if err != nil {
		return err
	}
	size2 := dirSize(repoDir)
	if _, err := root.Exec(fmt.Sprintf("UPDATE %s.wp_posts SET post_content = CONCAT(post_content, ' (edited again)') WHERE ID %% 100 = 7", src)); err != nil {
		return err
	}
	spread, err := cairn("snapshot", "bench/db")
	if err != nil {
		return err
	}
	size3 := dirSize(repoDir)

	fmt.Printf("\nMariaDB database %s: %d posts, dump %.1f MiB; 1%% = %d rows; medians of %d runs, alternating\n\n", src, rows, float64(dumpSize)/(1<<20), n, runs)
	fmt.Println("| step | cairn | peer | ratio | peak RSS cairn |")
	fmt.Println("|---|---|---|---|---|")
	row := func(name string, cs, ps []measure.Result) {
		c, p := measure.Median(cs), measure.Median(ps)
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f× | %d MiB |\n", name, c.Wall.Seconds(), p.Wall.Seconds(), c.Wall.Seconds()/p.Wall.Seconds(), measure.MaxRSS(cs)/1024)
	}
	row("snapshot vs `mariadb-dump | zstd -1`", firsts, peerDumps)
	row("restore vs `mariadb DB < dump.sql`", restores, peerLoads)
	if myErr == nil {
		row("snapshot vs `mydumper -t "+threads+"` (uncompressed)", firsts, myDumps)
		row("snapshot vs `mydumper -t "+threads+"`, then `zstd -1 -T"+threads+"` of its files", firsts, myZstdDumps)
		row("restore vs `myloader -t "+threads+"`", restores, myLoads)
	}
	fmt.Printf("| second snapshot, unchanged | %.2f s | | | %d MiB |\n", again.Wall.Seconds(), again.RSS/1024)
	fmt.Printf("\nall runs: snapshot %s vs %s; restore %s vs %s\n\n", measure.Walls(firsts), measure.Walls(peerDumps), measure.Walls(restores), measure.Walls(peerLoads))
	fmt.Println("| repository growth | bytes | % of dump | % of first snapshot's stored size |")
	fmt.Println("|---|---|---|---|")
	grow := func(name string, d int64) {
		fmt.Printf("| %s | %.1f MiB | %.2f%% | %.2f%% |\n", name, float64(d)/(1<<20), 100*float64(d)/float64(dumpSize), 100*float64(d)/float64(size0))
	}
	fmt.Printf("| first snapshot | %.1f MiB | %.1f%% | |\n", float64(size0)/(1<<20), 100*float64(size0)/float64(dumpSize))
	grow("unchanged", size1-size0)
	grow("one post in the middle edited", sizeOne-size1)
	grow("1% of rows changed, newest posts", size2-sizeOne)
	grow("1% of rows changed, spread (every 100th)", size3-size2)
	fmt.Printf("\nsnapshot times: clustered change %.2f s, spread change %.2f s\n", clustered.Wall.Seconds(), spread.Wall.Seconds())
	return nil
}

// generate fills db with WordPress-like posts and postmeta, about sizeMB
// of dump, and returns the number of posts.
func generate(db string, sizeMB int) (int, error) {
	conn, err := measure.MariaDB(db)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	for _, q := range []string{
		`CREATE TABLE wp_posts (ID BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, post_author BIGINT UNSIGNED, post_date DATETIME,
			post_content LONGTEXT, post_title TEXT, post_name VARCHAR(200), post_modified DATETIME, guid VARCHAR(255)) CHARACTER SET utf8mb4`,
		`CREATE TABLE wp_postmeta (meta_id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, post_id BIGINT UNSIGNED, meta_key VARCHAR(255),
			meta_value LONGTEXT, KEY post_id (post_id)) CHARACTER SET utf8mb4`,
	} {
		if _, err := conn.Exec(q); err != nil {
			return 0, err
		}
	}
	// A post is about 1 KiB of dump (prose from a word list, which zstd
	// compresses about as well as real posts), its meta about 120 bytes.
	posts := sizeMB * 1024 * 1024 / 1150
	rng := mrand.New(mrand.NewSource(1))
	words := strings.Fields(wordList)
	var p, m strings.Builder
	flush := func() error {
		for _, b := range []*strings.Builder{&p, &m} {
			if b.Len() > 0 {
				if _, err := conn.Exec(b.String()); err != nil {
					return err
				}
				b.Reset()
			}
		}
		return nil
	}
	for i := 1; i <= posts; i++ {
		if p.Len() == 0 {
			p.WriteString("INSERT INTO wp_posts (post_author, post_date, post_content, post_title, post_name, post_modified, guid) VALUES ")
			m.WriteString("INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES ")
		} else {
			p.WriteByte(',')
			m.WriteByte(',')
		}
		date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute).Format("2006-01-02 15:04:05")
		var body strings.Builder
		fmt.Fprintf(&body, `<!-- wp:paragraph --><p>See <a href=\"https://example.com/%d/\">this</a>.`, i)
		for body.Len() < 900 {
			body.WriteByte(' ')
			body.WriteString(words[rng.Intn(len(words))])
		}
		body.WriteString("</p><!-- /wp:paragraph -->")
		fmt.Fprintf(&p, "(%d,'%s','%s','Post %d','post-%d','%s','https://example.com/?p=%d')", 1+i%7, date, body.String(), i, i, date, i)
		url := fmt.Sprintf("https://example.com/%d/", i)
		fmt.Fprintf(&m, `(%d,'_meta','a:2:{s:4:\"time\";i:%d;s:3:\"url\";s:%d:\"%s\";}')`, i, 1600000000+rng.Intn(1e8), len(url), url)
		if p.Len() > 4<<20 {
			if err := flush(); err != nil {
				return 0, err
			}
			fmt.Fprintf(os.Stderr, "\r%d/%d posts", i, posts)
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	fmt.Fprintln(os.Stderr)
	return posts, nil
}

func dirSize(dir string) int64 {
	var n int64
	measure.Must(filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	}))
	return n
}

const wordList = `the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were
her she there been one all we their has would when if so no will more about up out who them what some its into only time could
site page post theme plugin garden river bread bicycle morning evening market village harbour mountain window letter kitchen
quietly slowly bright yellow green ancient modern simple careful honest gentle rapid distant familiar strange northern
build write read walk carry open close remember forget listen wonder travel gather measure repair explore describe
because although while until before after during between without within against among toward beyond
coffee music winter summer autumn spring forest meadow bridge castle library museum station island valley orchard`
