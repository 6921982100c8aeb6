// Command clonebench measures `cairn clone` against the hand pipeline it
// replaces, in one run, on a generated site (files and a WordPress-style
// MariaDB database): `rsync -a --delete` for the files and
// `mariadb-dump --single-transaction --quick | sed | mariadb` for the
// database. It clones once, then twice more, each time after changing 1%
// of the files and another 1% of the rows.
//
//	go run ./bench/clonebench [-files 1024] [-db 500] [-keep]
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

	"github.com/cairn-backup/cairn/bench/internal/measure"
)

func main() {
	filesMB := flag.Int("files", 1024, "site files in MiB")
	dbMB := flag.Int("db", 500, "database dump size in MiB")
	keep := flag.Bool("keep", false, "keep the work directory and databases")
	flag.Parse()
	if err := run(*filesMB, *dbMB, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "clonebench:", err)
		os.Exit(1)
	}
}

const from, to = "https://example.com", "https://staging.example.com"

func run(filesMB, dbMB int, keep bool) error {
	work, err := os.MkdirTemp("", "cairn-clonebench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	bin, err := measure.BuildCairn(work)
	if err != nil {
		return err
	}
	root, err := measure.MariaDB("")
	if err != nil {
		return err
	}
	defer root.Close()
	id := make([]byte, 4)
	rand.Read(id) //nolint:errcheck
	prefix := "cairn_clone_" + hex.EncodeToString(id)
	prodDB, stageDB, handDB := prefix+"_prod", prefix+"_stage", prefix+"_hand"
	for _, db := range []string{prodDB, stageDB, handDB} {
		if _, err := root.Exec("CREATE DATABASE " + db + " CHARACTER SET utf8mb4"); err != nil {
			return err
		}
		if !keep {
			defer root.Exec("DROP DATABASE IF EXISTS " + db) //nolint:errcheck
		}
	}
	prod, stage, hand := filepath.Join(work, "prod"), filepath.Join(work, "stage"), filepath.Join(work, "hand")
	fmt.Fprintf(os.Stderr, "generating %d MiB of files and a %d MiB database…\n", filesMB, dbMB)
	if err := generateTree(prod, filesMB); err != nil {
		return err
	}
	rows, err := generateDB(prodDB, dbMB)
	if err != nil {
		return err
	}
	os.MkdirAll(stage, 0o755)
	os.MkdirAll(hand, 0o755)
	cfg := filepath.Join(work, "cairn.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`repository: {path: %s}
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
`, filepath.Join(work, "repo"), from, prod, prodDB, to, stage, stageDB)), 0o644)
	env := append(os.Environ(), "CAIRN_PASSWORD=bench", "CAIRN_CONFIG="+cfg, "HOME="+filepath.Join(work, "home"))
	cairn := func(args ...string) (measure.Result, error) {
		c := exec.Command(bin, append([]string{"--no-progress"}, args...)...)
		c.Env = env
		return measure.Timed(c)
	}
	handPipeline := func() (measure.Result, error) {
		sh := fmt.Sprintf("rsync -a --delete %s/ %s/ && mariadb-dump --single-transaction --quick --routines --triggers --events --hex-blob -uroot -h127.0.0.1 %s | sed 's#%s#%s#g' | mariadb --max-allowed-packet=1G -uroot -h127.0.0.1 %s",
			prod, hand, prodDB, from, to, handDB)
		return measure.Timed(exec.Command("sh", "-c", sh))
	}
	if _, err := cairn("init"); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "first clone…")
	h1, err := handPipeline()
	if err != nil {
		return err
	}
	c1, err := cairn("clone", "bench/production", "bench/staging", "--json")
	if err != nil {
		return err
	}
	// Later clones: 1% more changed each time (a weekly refresh); the
	// third shows the steady state, where staging's safety snapshot
	// finds most of its dump stored already.
	var cs, hs []measure.Result
	for round := 1; round <= 2; round++ {
		fmt.Fprintln(os.Stderr, "changing 1% of files and rows…")
		if err := changeTree(prod); err != nil {
			return err
		}
		if _, err := root.Exec(fmt.Sprintf("UPDATE %s.wp_posts SET post_content = CONCAT(post_content, ' (edited)') WHERE ID > %d AND ID <= %d", prodDB, rows-rows/100*round, rows-rows/100*(round-1))); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "clone", round+1, "…")
		h, err := handPipeline()
		if err != nil {
			return err
		}
		c, err := cairn("clone", "bench/production", "bench/staging", "--json")
		if err != nil {
			return err
		}
		cs, hs = append(cs, c), append(hs, h)
	}
	fmt.Printf("\nsite: %d MiB of files, %d MiB database (%d posts)\n\n", filesMB, dbMB, rows)
	fmt.Println("| clone | cairn clone | rsync + dump \\| sed \\| load | ratio | cairn / its first | peak RSS cairn |")
	fmt.Println("|---|---|---|---|---|---|")
	row := func(name string, c, h measure.Result) {
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f× | %.2f× | %d MiB |\n", name, c.Wall.Seconds(), h.Wall.Seconds(), c.Wall.Seconds()/h.Wall.Seconds(), c.Wall.Seconds()/c1.Wall.Seconds(), c.RSS/1024)
	}
	row("first", c1, h1)
	row("second, 1% changed", cs[0], hs[0])
	row("third, 1% more changed", cs[1], hs[1])
	fmt.Println()
	for i, c := range append([]measure.Result{c1}, cs...) {
		fmt.Printf("cairn clone %d: stages %s; database: %s\n", i+1, stages(c.Out), databaseLine(c.Out))
	}
	return nil
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
			f.WriteString("\n// edited\n")
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
