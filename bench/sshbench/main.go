// Command sshbench measures cairn against rsync and ssh on a web server
// reached over SSH only: a host in a network namespace of its own (as the
// tests make one: ip netns + veth, its own sshd and MariaDB).
//
//	go run ./bench/sshbench [-size 1024] [-db 256] [-runs 3] [-keep]
//
// In one run it measures the first snapshot of the ~1 GiB site tree from
// ssh:// against rsync -a of the tree to an empty directory here; a
// snapshot with nothing changed against rsync -a of the unchanged tree; a
// restore onto the remote tree after 1% of its files changed against
// rsync -a --delete of the pristine tree onto it; and a snapshot of a
// database on the host's own MariaDB, reached through SSH, against
// ssh HOST mariadb-dump … | zstd -1 >/dev/null. Repeated steps show the
// median of -runs.
//
// It needs root (the namespace), OpenSSH's sshd and client, rsync, bash,
// mariadb-install-db, mariadbd, mariadb-dump and zstd.
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cairn-backup/cairn/bench/internal/measure"
	"github.com/cairn-backup/cairn/bench/internal/sitetree"
	"github.com/cairn-backup/cairn/internal/testenv"
)

func main() {
	sizeMB := flag.Int("size", 1024, "approximate tree size in MiB (about 25 files per MiB)")
	dbMB := flag.Int("db", 256, "approximate database dump size in MiB (0: no database step)")
	runs := flag.Int("runs", 3, "times the repeated steps run; medians are shown")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.BoolVar(&hold, "hold", false, "after the steps, keep the host up (until interrupted) and print how to run cairn against it")
	flag.StringVar(&steps, "steps", "first,same,restore,db", "the steps to measure")
	flag.Parse()
	if err := run(*sizeMB, *dbMB, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "sshbench:", err)
		os.Exit(1)
	}
}

// steps are the steps to measure (-steps).
var steps string

// hold keeps the host up after the steps (-hold), for a closer look.
var hold bool

func step(name string) bool { return strings.Contains(","+steps+",", ","+name+",") }

type row struct {
	step         string
	cairn, other []measure.Result
	peer         string
	target       string
}

func run(sizeMB, dbMB, runs int, keep bool) error {
	work, cairnBin, cleanup, err := measure.Workdir("sshbench", keep)
	if err != nil {
		return err
	}
	defer cleanup()
	home := filepath.Join(work, "home")
	key := filepath.Join(home, ".ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		return err
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return err
	}
	h, err := testenv.StartHost(testenv.HostOptions{Dir: filepath.Join(work, "host"), AuthorizedKey: string(pub), MariaDB: dbMB > 0})
	if err != nil {
		return err
	}
	defer h.Stop()
	known := filepath.Join(home, ".ssh", "known_hosts")
	if err := os.WriteFile(known, []byte(h.SSHD.KnownHostsLine()+"\n"), 0o600); err != nil {
		return err
	}
	remote := filepath.Join(work, "www") // the host's files (the namespace shares the file system)
	files, bytes := sitetree.Generate(remote, sizeMB)
	fmt.Fprintf(os.Stderr, "tree: %d files, %.1f MiB on %s\n", files, float64(bytes)/(1<<20), h.Addr)

	dsn := ""
	if !step("db") {
		dbMB = 0
	}
	if dbMB > 0 {
		if err := generateDB(h.DB, dbMB); err != nil {
			return err
		}
		dsn = fmt.Sprintf("mysql://%s:%s@127.0.0.1:3306/bench?ssh=root@%s", h.DB.User, strings.ReplaceAll(h.DB.Password, "'", "''"), h.Addr)
	}
	cfg := filepath.Join(work, "cairn.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`repository:
  path: %s
sites:
  site:
    environments:
      prod:
        files: ssh://root@%s%s
%s`, filepath.Join(work, "repo"), h.Addr, remote, dbEnv(h.Addr, remote, dsn))), 0o600); err != nil {
		return err
	}
	env := append(os.Environ(), "HOME="+home, "CAIRN_PASSWORD=bench", "CAIRN_CONFIG="+cfg, "SSH_AUTH_SOCK=")
	cairn := func(args ...string) (measure.Result, error) {
		c := exec.Command(cairnBin, append([]string{"--no-progress"}, args...)...)
		c.Env = env
		return timed(c)
	}
	ssh := []string{"ssh", "-i", key, "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	shell := func(script string) (measure.Result, error) {
		c := exec.Command("bash", "-o", "pipefail", "-c", script)
		c.Env = env
		return timed(c)
	}
	rsync := func(args ...string) (measure.Result, error) {
		c := exec.Command("rsync", append([]string{"-a", "-e", strings.Join(ssh, " ")}, args...)...)
		c.Env = env
		return timed(c)
	}
	if _, err := cairn("init"); err != nil {
		return err
	}
	pulled := filepath.Join(work, "pulled")
	// pair measures cairn and its peer n times, alternating.
	pair := func(n int, r row, before func(round int), c func() (measure.Result, error), peer func() (measure.Result, error)) (row, error) {
		for round := range n {
			for _, side := range []struct {
				run func() (measure.Result, error)
				out *[]measure.Result
			}{{c, &r.cairn}, {peer, &r.other}} {
				if before != nil {
					before(round)
				}
				m, err := side.run()
				if err != nil {
					return r, err
				}
				*side.out = append(*side.out, m)
			}
		}
		return r, nil
	}
	pull := func() (measure.Result, error) { return rsync("root@"+h.Addr+":"+remote+"/", pulled+"/") }
	snapshot := func(env string) func() (measure.Result, error) {
		return func() (measure.Result, error) { return cairn("snapshot", env) }
	}
	var rows []row
	// The first snapshot, and the pulled copy, are what the other steps
	// start from.
	r, err := pair(1, row{step: "first snapshot of the tree", peer: "rsync -a (to an empty directory)", target: "≤ 1.3×"}, nil, snapshot("site/prod"), pull)
	if err != nil {
		return err
	}
	rows = append(rows, r)
	if step("same") {
		r, err := pair(runs, row{step: "snapshot, nothing changed", peer: "rsync -a (unchanged tree)", target: "≤ 2 s, ≤ 1.0×"}, nil, snapshot("site/prod"), pull)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if step("restore") {
		// The host's tree changes by 1% before each tool puts it back
		// (the same edits each time, so both start alike).
		r, err := pair(runs, row{step: "restore onto the remote tree, 1% changed", peer: "rsync -a --delete (pristine tree onto it)", target: "≤ 1.0×"},
			func(round int) { sitetree.Change(remote, round) },
			func() (measure.Result, error) { return cairn("restore", "site/prod@latest", "--to", "site/prod") },
			func() (measure.Result, error) { return rsync("--delete", pulled+"/", "root@"+h.Addr+":"+remote+"/") })
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if dbMB > 0 {
		dump := strings.Join(ssh, " ") + " root@" + h.Addr + " mariadb-dump --single-transaction --quick -S " + h.DB.Socket + " -uroot bench | zstd -1 -q >/dev/null"
		r, err := pair(runs, row{step: fmt.Sprintf("database snapshot through SSH (%d MiB dump)", dbMB), peer: "ssh host mariadb-dump | zstd -1", target: "≤ 1.2×"},
			nil, snapshot("site/db"), func() (measure.Result, error) { return shell(dump) })
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	report(rows, files, bytes)
	if hold {
		fmt.Fprintf(os.Stderr, "the host is up until interrupted; run cairn against it with\n  env HOME=%s CAIRN_PASSWORD=bench CAIRN_CONFIG=%s SSH_AUTH_SOCK= %s snapshot site/prod\n", home, cfg, cairnBin)
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
	}
	return nil
}

// dbEnv is the environment of the database step: a small part of the
// tree, and the database ("" without one).
func dbEnv(addr, remote, dsn string) string {
	if dsn == "" {
		return ""
	}
	return fmt.Sprintf("      db:\n        files: ssh://root@%s%s/wp-content/plugins/p000\n        databases: ['%s']\n", addr, remote, dsn)
}

// timed runs c from a cold page cache (as root) and measures it.
func timed(c *exec.Cmd) (measure.Result, error) {
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) //nolint:errcheck
	return measure.Timed(c)
}

func report(rows []row, files int, bytes int64) {
	fmt.Printf("\nover SSH to a host in a network namespace, %d files, %.0f MiB\n\n", files, float64(bytes)/(1<<20))
	fmt.Println("| step | cairn | peer | ratio (median) | target |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		c, o := measure.Median(r.cairn), measure.Median(r.other)
		fmt.Printf("| %s | %s, %d MiB | %s: %s | %.2f× | %s |\n", r.step, measure.Walls(r.cairn), measure.MaxRSS(r.cairn)/1024,
			r.peer, measure.Walls(r.other), c.Wall.Seconds()/o.Wall.Seconds(), r.target)
	}
}

// generateDB fills the host's database bench with posts, ~1 KiB of dump
// each.
func generateDB(db *testenv.HostDB, sizeMB int) error {
	if out, err := db.SQL("CREATE DATABASE bench; CREATE TABLE bench.wp_posts (ID BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, post_content LONGTEXT, guid VARCHAR(255)) CHARACTER SET utf8mb4;"); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	c := driver.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "unix", db.Socket, "bench"
	conn, err := driver.NewConnector(c)
	if err != nil {
		return err
	}
	sdb := sql.OpenDB(conn)
	defer sdb.Close()
	words := strings.Fields("the of and to in is that it for on with as was at by this be from or have an are not but we you all can more one so if about which their will there what when up out who them do into has")
	rng := rand.New(rand.NewSource(1))
	posts := sizeMB * 1024 * 1024 / 1100
	var q strings.Builder
	for i := 1; i <= posts; i++ {
		if q.Len() == 0 {
			q.WriteString("INSERT INTO wp_posts (post_content, guid) VALUES ")
		} else {
			q.WriteByte(',')
		}
		var body strings.Builder
		fmt.Fprintf(&body, `<a href=\"https://example.com/%d/\">link</a>`, i)
		for body.Len() < 1000 {
			body.WriteString(" " + words[rng.Intn(len(words))])
		}
		fmt.Fprintf(&q, "('%s','https://example.com/?p=%d')", body.String(), i)
		if q.Len() > 4<<20 || i == posts {
			if _, err := sdb.Exec(q.String()); err != nil {
				return err
			}
			q.Reset()
		}
	}
	return nil
}
