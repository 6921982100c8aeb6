// Package sitetree generates the benchmarks' site-like file tree and
// changes it as a site changes, deterministically.
package sitetree

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

// Generate writes a site-like tree deterministically: small PHP/JS/CSS
// text files, incompressible mid-size images, and a few large files.
func Generate(dir string, sizeMB int) (files int, bytes int64) {
	os.RemoveAll(dir)
	rng := rand.New(rand.NewSource(42))
	words := strings.Fields("function return array echo $post $wp_query if else foreach add_action apply_filters wp_enqueue_script get_option update_option esc_html class public private static const var let document window querySelector addEventListener margin padding color display flex grid")
	budget := int64(sizeMB) << 20
	large := budget / 6
	n := sizeMB * 25
	for i := 0; i < n; i++ {
		var data []byte
		var name string
		sub := filepath.Join(dir, "wp-content", fmt.Sprintf("plugins/p%03d/inc", i%200))
		switch {
		case i%4 == 3: // images
			size := 10<<10 + rng.Intn(100<<10)
			data = make([]byte, size)
			rng.Read(data)
			sub = filepath.Join(dir, "wp-content/uploads", fmt.Sprintf("%d/%02d", 2020+i%6, i%12+1))
			name = fmt.Sprintf("img%05d.jpg", i)
		default:
			size := 500 + rng.Intn(8<<10)
			var b strings.Builder
			for b.Len() < size {
				b.WriteString(words[rng.Intn(len(words))])
				if rng.Intn(8) == 0 {
					b.WriteString(";\n")
				} else {
					b.WriteByte(' ')
				}
			}
			data = []byte(b.String())
			name = fmt.Sprintf("file%05d.%s", i, []string{"php", "js", "css"}[i%3])
		}
		write(filepath.Join(sub, name), data)
		files++
		bytes += int64(len(data))
	}
	for i := 0; bytes < budget && i < 8; i++ {
		n := writeRandom(filepath.Join(dir, "backups", fmt.Sprintf("archive%d.zip", i)), min(large, budget-bytes), rng)
		files++
		bytes += n
	}
	return files, bytes
}

// Change edits 1% of the files (every 100th, from the round-th) the way
// a site changes: 4 KiB in the middle of each is rewritten in place (all
// of a small file, one region of a large one), sizes kept.
func Change(dir string, round int) {
	i := 0
	buf := make([]byte, 4096)
	check(filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if i++; i%100 != round {
			return nil
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		off := max(0, fi.Size()/2-2048)
		n, _ := f.ReadAt(buf, off)
		for j := range buf[:n] {
			buf[j] ^= byte(0x5a + round)
		}
		_, err = f.WriteAt(buf[:n], off)
		return err
	}))
}

// writeRandom writes size random bytes in small chunks: the benchmark's
// own peak memory must stay small, because Linux reports a child's peak RSS
// as at least its parent's (the high-water mark survives exec).
func writeRandom(p string, size int64, rng *rand.Rand) int64 {
	check(os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), left)]
		rng.Read(chunk)
		if _, err := f.Write(chunk); err != nil {
			panic(err)
		}
	}
	return size
}

func write(p string, data []byte) {
	check(os.MkdirAll(filepath.Dir(p), 0o755))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		panic(err)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmark set-up:", err)
		os.Exit(1)
	}
}
