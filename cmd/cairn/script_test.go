package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cairn-backup/cairn/internal/testenv"
)

func TestMain(m *testing.M) {
	testscript.Main(stopMinIO{m}, map[string]func(){
		"cairn": func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// stopMinIO stops the tests' MinIO, if one was started, once they ran
// (testscript.Main exits without returning), so that its data is removed.
type stopMinIO struct{ *testing.M }

func (s stopMinIO) Run() int {
	code := s.M.Run()
	testenv.StopMinIO()
	return code
}

// TestScripts runs the end-to-end scripts in testdata/script: what a user
// types, and what cairn must answer.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("CAIRN_CONFIG", "")
			env.Setenv("CAIRN_PASSWORD", "")
			env.Setenv("TZ", "UTC")
			// The directory holding the cairn command alone, for PATHs
			// that lack the database tools.
			env.Setenv("CAIRN_BIN_DIR", filepath.SplitList(env.Getenv("PATH"))[0])
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"gentree":    positive("gentree", cmdGentree),
			"bytenames":  positive("bytenames", cmdByteNames),
			"s3bucket":   positive("s3bucket", cmdS3Bucket),
			"waitpacks":  positive("waitpacks", cmdWaitPacks),
			"waitfile":   positive("waitfile", cmdWaitFile),
			"tmpfs":      positive("tmpfs", cmdTmpfs),
			"touch":      positive("touch", cmdTouch),
			"treeeq":     cmdTreeEq,
			"jsonenv":    positive("jsonenv", cmdJSONEnv),
			"sleep":      positive("sleep", cmdSleep),
			"mariadb":    positive("mariadb", cmdMariaDB),
			"postgres":   positive("postgres", cmdPostgres),
			"dbstats":    cmdDBStats,
			"dbsql":      cmdDBSQL,
			"killproc":   positive("killproc", cmdKillProc),
			"waitdb":     positive("waitdb", cmdWaitDB),
			"nosidedb":   positive("nosidedb", cmdNoSideDB),
			"expand":     positive("expand", cmdExpand),
			"dbtrue":     cmdDBTrue,
			"httpserve":  positive("httpserve", cmdHTTPServe),
			"wordpress":  positive("wordpress", cmdWordPress),
			"wpserve":    positive("wpserve", cmdWPServe),
			"fetch":      cmdFetch,
			"wpoptions":  cmdWPOptions,
			"flipbyte":   positive("flipbyte", cmdFlipByte),
			"flipchar":   positive("flipchar", cmdFlipChar),
			"truncate":   positive("truncate", cmdTruncate),
			"pickblob":   positive("pickblob", cmdPickBlob),
			"dbobjects":  positive("dbobjects", cmdDBObjects),
			"dbhold":     positive("dbhold", cmdDBHold),
			"waitproc":   positive("waitproc", cmdWaitProc),
			"waitlocked": positive("waitlocked", cmdWaitLocked),
			"nosecret":   positive("nosecret", cmdNoSecret),
			"sshhost":    positive("sshhost", cmdSSHHost),
			"hostsql":    positive("hostsql", cmdHostSQL),
			"sshkill":    positive("sshkill", cmdSSHKill),
			"sshrekey":   positive("sshrekey", cmdSSHRekey),
			"sshslow":    positive("sshslow", cmdSSHSlow),
			"sshnet":     positive("sshnet", cmdSSHNet),
		},
	})
}

// positive refuses `! name`: a command that only does something, or only
// asserts one way, must not be silently taken for its negation.
func positive(name string, cmd func(ts *testscript.TestScript, neg bool, args []string)) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg {
			ts.Fatalf("%s does not take !: say what must hold instead", name)
		}
		cmd(ts, neg, args)
	}
}

// gentree DIR FILES SIZE: FILES files of SIZE bytes of incompressible data.
func cmdGentree(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: gentree DIR FILES SIZE")
	}
	n, _ := strconv.Atoi(args[1])
	size, _ := strconv.Atoi(args[2])
	dir := ts.MkAbs(args[0])
	rng := rand.New(rand.NewSource(int64(n*31 + size)))
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		rng.Read(buf)
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%10), fmt.Sprintf("f%04d.bin", i))
		ts.Check(os.MkdirAll(filepath.Dir(p), 0o755))
		ts.Check(os.WriteFile(p, buf, 0o644))
	}
}

// s3bucket: start (once) a real MinIO on loopback, make a bucket and set
// S3_REPO, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_ENDPOINT.
func cmdS3Bucket(ts *testscript.TestScript, neg bool, args []string) {
	s3Srv, s3Err := testenv.StartMinIO()
	if s3Err != nil {
		ts.Fatalf("MinIO is required: %v. Run ./scripts/test, which installs and starts it", s3Err)
	}
	bucket := fmt.Sprintf("s-%d", time.Now().UnixNano())
	cli, err := minio.New(s3Srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3Srv.AccessKey, s3Srv.SecretKey, "")})
	ts.Check(err)
	ts.Check(cli.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}))
	ts.Setenv("S3_REPO", "s3://"+bucket+"/cairn?endpoint=http://"+s3Srv.Endpoint)
	ts.Setenv("S3_ENDPOINT", s3Srv.Endpoint)
	ts.Setenv("AWS_ACCESS_KEY_ID", s3Srv.AccessKey)
	ts.Setenv("AWS_SECRET_ACCESS_KEY", s3Srv.SecretKey)
}

// sleep DURATION
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// waitfile PATH: wait until PATH (or a file matching it, a glob) exists.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(ts.MkAbs(args[0])); len(m) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear", args[0])
}

// waitpacks REPO: wait until a data pack blob appears in a local
// repository (so that a snapshot is known to be half-way).
func cmdWaitPacks(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		found := false
		filepath.Walk(filepath.Join(dir, "p"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && strings.HasSuffix(fi.Name(), ".f") {
				found = true
			}
			return nil
		})
		if found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("no pack blob appeared under %s", dir)
}

// tmpfs DIR SIZE: mount a small tmpfs (to fill a disk for real).
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+args[1], "tmpfs", dir).CombinedOutput()
	if err != nil {
		ts.Fatalf("mount tmpfs (to fill a disk for real; needs root) failed: %v: %s", err, out)
	}
	ts.Defer(func() { exec.Command("umount", "-l", dir).Run() })
}

// touch FILE TIME: set a file's modification time (RFC 3339).
func cmdTouch(ts *testscript.TestScript, neg bool, args []string) {
	tm, err := time.Parse(time.RFC3339, args[1])
	ts.Check(err)
	ts.Check(os.Chtimes(ts.MkAbs(args[0]), tm, tm))
}

// jsonenv VAR FILE PATH: set VAR to a value in a JSON file, PATH being
// dot-separated keys and array indexes (1.id, -1.time; -1 = last).
func cmdJSONEnv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonenv VAR FILE PATH")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &v))
	for _, key := range strings.Split(args[2], ".") {
		switch cur := v.(type) {
		case []any:
			i, err := strconv.Atoi(key)
			ts.Check(err)
			if i < 0 {
				i += len(cur)
			}
			if i < 0 || i >= len(cur) {
				ts.Fatalf("index %s out of range (%d items)", key, len(cur))
			}
			v = cur[i]
		case map[string]any:
			v = cur[key]
		default:
			ts.Fatalf("cannot index %v with %s", v, key)
		}
	}
	ts.Setenv(args[0], fmt.Sprint(v))
}

// bytenames DIR: files named with every byte value but '/' (and NUL, which
// no name holds): alone (but '.'), inside a name, and twice in a row.
func cmdByteNames(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	for b := 1; b <= 0xFF; b++ {
		if b == '/' {
			continue
		}
		c := string([]byte{byte(b)})
		names := []string{"caf" + c + ".txt", c + c + "x"}
		if b != '.' {
			names = append(names, c)
		}
		for _, n := range names {
			ts.Check(os.WriteFile(filepath.Join(dir, n), []byte(fmt.Sprintf("%x", n)), 0o644))
		}
	}
	// The longest names a file system takes (255 bytes).
	for _, n := range []string{strings.Repeat("l", 255), strings.Repeat("\xe9", 255)} {
		ts.Check(os.WriteFile(filepath.Join(dir, n), []byte("long"), 0o644))
	}
}

// treeeq A B: the two trees hold the same files with the same content.
func cmdTreeEq(ts *testscript.TestScript, neg bool, args []string) {
	a, b := readAll(ts, ts.MkAbs(args[0])), readAll(ts, ts.MkAbs(args[1]))
	var diffs []string
	for p, ca := range a {
		if cb, ok := b[p]; !ok {
			diffs = append(diffs, "only in "+args[0]+": "+p)
		} else if ca != cb {
			diffs = append(diffs, "differs: "+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			diffs = append(diffs, "only in "+args[1]+": "+p)
		}
	}
	if (len(diffs) == 0) == neg {
		if neg {
			ts.Fatalf("trees are equal")
		}
		ts.Fatalf("trees differ:\n%s", strings.Join(diffs, "\n"))
	}
}

func readAll(ts *testscript.TestScript, dir string) map[string]string {
	out := map[string]string{}
	ts.Check(filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			out[rel] = "-> " + t
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("%o %s", fi.Mode().Perm(), b)
		case fi.IsDir() && rel != ".":
			out[rel+"/"] = fmt.Sprintf("%o", fi.Mode().Perm())
		}
		return nil
	}))
	return out
}
