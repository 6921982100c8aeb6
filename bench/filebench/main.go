// Command filebench measures cairn against restic on a generated site-like
// tree: first snapshot, incremental snapshot after changing 1% of the files,
// and full restore, in one run, with wall time, peak memory and repository
// size side by side and the ratios.
//
//	go run ./bench/filebench [-size 1024] [-s3] [-keep]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairn-backup/cairn/bench/internal/sitetree"
	"github.com/cairn-backup/cairn/internal/testenv"
)

var compression string

type result struct {
	wall time.Duration
	rss  int64 // KiB
}

type tool struct {
	name                 string
	first, incr, restore result
	repoBytes            int64
}

func main() {
	sizeMB := flag.Int("size", 1024, "approximate tree size in MiB (about 25 files per MiB)")
	useS3 := flag.Bool("s3", false, "use a MinIO server on loopback instead of a local directory")
	keep := flag.Bool("keep", false, "keep the work directory")
	toolList := flag.String("tools", "cairn,restic", "tools to measure, in this order")
	flag.StringVar(&compression, "compression", "", "cairn's compressor (default: cairn's default)")
	flag.Parse()
	if err := run(*sizeMB, *useS3, *keep, strings.Split(*toolList, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "filebench:", err)
		os.Exit(1)
	}
}

func run(sizeMB int, useS3, keep bool, names []string) error {
	work, err := os.MkdirTemp("", "cairn-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	cairnBin := filepath.Join(work, "cairn")
	if out, err := exec.Command("go", "build", "-o", cairnBin, "./cmd/cairn").CombinedOutput(); err != nil {
		return fmt.Errorf("build cairn: %v: %s", err, out)
	}
	tree := filepath.Join(work, "site")
	files, bytes := sitetree.Generate(tree, sizeMB)
	fmt.Fprintf(os.Stderr, "tree: %d files, %.1f MiB\n", files, float64(bytes)/(1<<20))

	var s3 *testenv.S3
	if useS3 {
		srv, err := testenv.StartMinIO()
		if err != nil {
			return err
		}
		defer testenv.StopMinIO()
		s3 = &srv
	}
	var tools []tool
	for _, name := range names {
		if name == "restic" {
			if _, err := exec.LookPath("restic"); err != nil {
				fmt.Fprintln(os.Stderr, "restic not installed (apt-get install restic): cairn only")
				continue
			}
		}
		// Each tool starts from the same tree.
		sitetree.Generate(tree, sizeMB)
		t, err := measure(name, cairnBin, work, tree, s3)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		tools = append(tools, t)
	}
	report(tools, files, bytes, useS3)
	return nil
}

func measure(name, cairnBin, work, tree string, s3 *testenv.S3) (tool, error) {
	t := tool{name: name}
	repoDir := filepath.Join(work, name+"-repo")
	out := filepath.Join(work, name+"-restore")
	env := append(os.Environ(), "CAIRN_PASSWORD=bench", "RESTIC_PASSWORD=bench", "HOME="+filepath.Join(work, name+"-home"),
		"CAIRN_CONFIG=")
	repoURL := repoDir
	if name == "cairn" && compression != "" {
		cfg := filepath.Join(work, "cairn.yaml")
		must(os.WriteFile(cfg, []byte("repository: {compression: "+compression+"}\n"), 0o644))
		env = append(env, "CAIRN_CONFIG="+cfg)
	}
	var bucket string
	if s3 != nil {
		bucket = "bench-" + name + fmt.Sprint(time.Now().Unix())
		cli, _ := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, "")})
		if err := cli.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
			return t, err
		}
		env = append(env, "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey)
		if name == "cairn" {
			repoURL = "s3://" + bucket + "/r?endpoint=http://" + s3.Endpoint
		} else {
			repoURL = "s3:http://" + s3.Endpoint + "/" + bucket + "/r"
		}
	}
	cmd := func(args ...string) (result, error) {
		var c *exec.Cmd
		if name == "cairn" {
			c = exec.Command(cairnBin, append([]string{"--no-progress", "--repo", repoURL}, args...)...)
		} else {
			c = exec.Command("restic", append([]string{"-q", "-r", repoURL}, args...)...)
		}
		c.Env = env
		settle()
		start := time.Now()
		outb, err := c.CombinedOutput()
		r := result{wall: time.Since(start)}
		if err != nil {
			return r, fmt.Errorf("%s: %v: %s", strings.Join(c.Args, " "), err, outb)
		}
		r.rss = c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		return r, nil
	}
	var err error
	if _, err = cmd("init"); err != nil {
		return t, err
	}
	if name == "cairn" {
		if t.first, err = cmd("snapshot", tree); err != nil {
			return t, err
		}
		if t.incr, err = median(tree, func() (result, error) { return cmd("snapshot", tree) }); err != nil {
			return t, err
		}
		if t.restore, err = cmd("restore", "site/"+shortHost()+"@latest", "--to", out); err != nil {
			return t, err
		}
	} else {
		if t.first, err = cmd("backup", tree); err != nil {
			return t, err
		}
		if t.incr, err = median(tree, func() (result, error) { return cmd("backup", tree) }); err != nil {
			return t, err
		}
		if t.restore, err = cmd("restore", "latest", "--target", out); err != nil {
			return t, err
		}
	}
	if s3 != nil {
		t.repoBytes = bucketSize(s3, bucket)
	} else {
		t.repoBytes = dirSize(repoDir)
	}
	os.RemoveAll(out)
	return t, nil
}

// settle flushes dirty pages and, where allowed (root), drops the page
// cache, so that every step starts from the same cold state and none pays
// for the previous one's write-back.
func settle() {
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) //nolint:errcheck
}

func shortHost() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	return h
}

// incrementalRounds incremental snapshots are taken, each after changing
// another 1% of the files; the median is reported (single runs are noisy).
const incrementalRounds = 3

func median(tree string, snapshot func() (result, error)) (result, error) {
	var rs []result
	for round := range incrementalRounds {
		sitetree.Change(tree, round)
		r, err := snapshot()
		if err != nil {
			return r, err
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].wall < rs[j].wall })
	return rs[len(rs)/2], nil
}

func dirSize(dir string) int64 {
	var n int64
	must(filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	}))
	return n
}

func bucketSize(s3 *testenv.S3, bucket string) int64 {
	cli, _ := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, "")})
	var n int64
	for o := range cli.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		n += o.Size
	}
	return n
}

func report(tools []tool, files int, bytes int64, s3 bool) {
	where := "local repository"
	if s3 {
		where = "S3 repository (MinIO on loopback)"
	}
	fmt.Printf("\n%s, %d files, %.0f MiB\n\n", where, files, float64(bytes)/(1<<20))
	fmt.Println("| step | tool | wall | peak RSS | ratio cairn/restic |")
	fmt.Println("|---|---|---|---|---|")
	rows := []struct {
		step string
		get  func(tool) result
	}{
		{"first snapshot", func(t tool) result { return t.first }},
		{"incremental (1% changed, median of 3)", func(t tool) result { return t.incr }},
		{"full restore", func(t tool) result { return t.restore }},
	}
	for _, row := range rows {
		for i, t := range tools {
			r := row.get(t)
			ratio := ""
			if i == 0 && len(tools) == 2 {
				ratio = fmt.Sprintf("%.2f× time, %.2f× memory", r.wall.Seconds()/row.get(tools[1]).wall.Seconds(), float64(r.rss)/float64(row.get(tools[1]).rss))
			}
			fmt.Printf("| %s | %s | %.2fs | %d MiB | %s |\n", row.step, t.name, r.wall.Seconds(), r.rss/1024, ratio)
		}
	}
	for i, t := range tools {
		ratio := ""
		if i == 0 && len(tools) == 2 {
			ratio = fmt.Sprintf("%.3f×", float64(t.repoBytes)/float64(tools[1].repoBytes))
		}
		fmt.Printf("| repository size | %s | %.1f MiB | | %s |\n", t.name, float64(t.repoBytes)/(1<<20), ratio)
	}
}

// must ends the benchmark when its set-up fails: numbers measured on a
// half-made set-up would mislead.
func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmark set-up:", err)
		os.Exit(1)
	}
}
