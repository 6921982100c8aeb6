// Package measure holds what the benchmarks share: building cairn, timing
// a command with its peak memory, and summing up repeated runs.
package measure

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// Result is one timed command.
type Result struct {
	Wall time.Duration
	RSS  int64  // peak resident memory, KiB (of the command and its children)
	Out  []byte // what it printed, stdout and stderr
}

// Workdir makes a benchmark's work directory (removed by cleanup unless
// keep) and builds cairn into it.
func Workdir(name string, keep bool) (dir, cairn string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "cairn-"+name+"-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}
	if cairn, err = BuildCairn(dir); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return dir, cairn, cleanup, nil
}

// BuildCairn builds cairn from the current module into dir.
func BuildCairn(dir string) (string, error) {
	bin := filepath.Join(dir, "cairn")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/cairn").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build cairn: %v: %s", err, out)
	}
	return bin, nil
}

// Timed runs c after flushing dirty pages, and measures it.
func Timed(c *exec.Cmd) (Result, error) {
	syscall.Sync()
	start := time.Now()
	out, err := c.CombinedOutput()
	r := Result{Wall: time.Since(start), Out: out}
	if err != nil {
		return r, fmt.Errorf("%s: %v: %s", strings.Join(c.Args, " "), err, out)
	}
	r.RSS = c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	return r, nil
}

// Median is the run of median wall time.
func Median(rs []Result) Result {
	s := append([]Result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Wall < s[j].Wall })
	return s[len(s)/2]
}

// MaxRSS is the largest peak memory of the runs, KiB.
func MaxRSS(rs []Result) int64 {
	var m int64
	for _, r := range rs {
		m = max(m, r.RSS)
	}
	return m
}

// Walls lists the runs' wall times: "1.20/1.31/1.25 s".
func Walls(rs []Result) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%.2f", r.Wall.Seconds()))
	}
	return strings.Join(out, "/") + " s"
}

// MariaDB connects to db (or the server, db "") on the MariaDB the
// benchmarks use: 127.0.0.1:3306, root, no password.
func MariaDB(db string) (*sql.DB, error) {
	c := driver.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", "127.0.0.1:3306", db
	conn, err := driver.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// Must ends the benchmark when its set-up fails: numbers measured on a
// half-made set-up would mislead.
func Must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmark set-up:", err)
		os.Exit(1)
	}
}
