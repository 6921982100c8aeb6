// Command rewritebench measures `cairn rewrite` against sed on a generated
// WordPress-style MySQL dump (posts, postmeta and options; 10% of values
// PHP-serialized; URLs in half the rows), in one run: wall time, MB/s,
// peak memory, and the ratio to sed (the speed floor users compare with,
// and the tool that corrupts serialized data).
//
//	go run ./bench/rewritebench [-size 1024] [-runs 3] [-keep]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cairn-backup/cairn/bench/internal/measure"
)

func main() {
	sizeMB := flag.Int("size", 1024, "dump size in MiB")
	runs := flag.Int("runs", 3, "runs of each tool, alternating; medians are shown")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.Parse()
	if err := run(*sizeMB, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "rewritebench:", err)
		os.Exit(1)
	}
}

func run(sizeMB, runs int, keep bool) error {
	work, bin, cleanup, err := measure.Workdir("rewritebench", keep)
	if err != nil {
		return err
	}
	defer cleanup()
	dump := filepath.Join(work, "dump.sql")
	fmt.Fprintf(os.Stderr, "generating %d MiB…\n", sizeMB)
	size, err := generate(dump, int64(sizeMB)<<20)
	if err != nil {
		return err
	}
	const from, to = "https://example.com", "https://staging.example.com"
	var cairn, sed []measure.Result
	for i := 0; i < runs; i++ {
		r, err := measure.Timed(exec.Command("sh", "-c", "sed 's#"+from+"#"+to+"#g' "+dump+" >/dev/null"))
		if err != nil {
			return err
		}
		sed = append(sed, r)
		r, err = measure.Timed(exec.Command("sh", "-c", bin+" rewrite --from "+from+" --to "+to+" --in "+dump+" 2>/dev/null >/dev/null"))
		if err != nil {
			return err
		}
		cairn = append(cairn, r)
	}
	c, s := measure.Median(cairn), measure.Median(sed)
	mb := float64(size) / 1e6
	fmt.Printf("\ndump %.0f MB; medians of %d alternating runs\n\n", mb, runs)
	fmt.Println("| tool | wall | MB/s | peak RSS |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| cairn rewrite | %.2f s | %.0f | %d MiB |\n", c.Wall.Seconds(), mb/c.Wall.Seconds(), measure.MaxRSS(cairn)/1024)
	fmt.Printf("| sed 's#FROM#TO#g' | %.2f s | %.0f | %d MiB |\n", s.Wall.Seconds(), mb/s.Wall.Seconds(), measure.MaxRSS(sed)/1024)
	fmt.Printf("\ncairn / sed: %.2f× (all runs: cairn %s, sed %s)\n", c.Wall.Seconds()/s.Wall.Seconds(), measure.Walls(cairn), measure.Walls(sed))
	return nil
}

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which but have
site page post theme plugin garden river bread bicycle morning evening market village harbour mountain window letter kitchen`)

// generate writes a mysqldump-style file of about size bytes.
func generate(path string, size int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewSource(1))
	fmt.Fprint(w, "-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n/*!40101 SET NAMES utf8mb4 */;\n")
	fmt.Fprint(w, "CREATE TABLE `wp_posts` (\n  `ID` bigint(20) unsigned NOT NULL,\n  `post_content` longtext NOT NULL,\n  `post_title` text NOT NULL,\n  `guid` varchar(255) NOT NULL,\n  PRIMARY KEY (`ID`)\n) ENGINE=InnoDB;\n")
	fmt.Fprint(w, "CREATE TABLE `wp_postmeta` (\n  `meta_id` bigint(20) unsigned NOT NULL,\n  `post_id` bigint(20) unsigned NOT NULL,\n  `meta_key` varchar(255),\n  `meta_value` longtext,\n  PRIMARY KEY (`meta_id`)\n) ENGINE=InnoDB;\n")
	var written int64
	id := 0
	for written < size {
		fmt.Fprint(w, "INSERT INTO `wp_posts` VALUES ")
		for row := 0; row < 800; row++ {
			id++
			var body strings.Builder
			if id%2 == 0 {
				fmt.Fprintf(&body, `<p>See <a href=\"https://example.com/%d/\">this</a>.`, id)
			}
			for body.Len() < 900 {
				body.WriteByte(' ')
				body.WriteString(words[rng.Intn(len(words))])
			}
			if row > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, "(%d,'%s','Post %d','https://example.com/?p=%d')", id, body.String(), id, id)
		}
		w.WriteString(";\nINSERT INTO `wp_postmeta` VALUES ")
		for row := 0; row < 800; row++ {
			if row > 0 {
				w.WriteByte(',')
			}
			mid := id*10 + row
			if row%10 == 0 { // a serialized value, with a URL half the time
				u := "https://example.com/wp-content/uploads/" + fmt.Sprint(mid) + ".jpg"
				if row%20 != 0 {
					u = "/wp-content/uploads/" + fmt.Sprint(mid) + ".jpg"
				}
				fmt.Fprintf(w, `(%d,%d,'_wp_attachment_metadata','a:3:{s:5:\"width\";i:1200;s:4:\"file\";s:%d:\"%s\";s:5:\"sizes\";a:1:{s:5:\"thumb\";s:9:\"thumb.jpg\";}}')`, mid, id, len(u), u)
			} else if row%2 == 0 {
				fmt.Fprintf(w, "(%d,%d,'_link','https://example.com/%d')", mid, id, mid)
			} else {
				fmt.Fprintf(w, "(%d,%d,'_edit_lock','%d:1')", mid, id, 1600000000+mid)
			}
		}
		w.WriteString(";\n")
		if err := w.Flush(); err != nil {
			return 0, err
		}
		st, _ := f.Stat()
		written = st.Size()
	}
	return written, w.Flush()
}
