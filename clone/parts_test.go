package clone

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The load reads the parts one after the other, whatever order they are
// written and ended in, while the repository's writers get each part's
// bytes as they come.
func TestPartedTeeOrder(t *testing.T) {
	for round := range 20 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(round), 1))
			n := 1 + rnd.IntN(5)
			pr, pw := io.Pipe()
			repoSide := make([]*bytes.Buffer, n)
			ws := make([]io.Writer, n)
			for i := range ws {
				repoSide[i] = &bytes.Buffer{}
				ws[i] = repoSide[i]
			}
			pt := newPartedTee(&detachable{pw: pw}, t.TempDir(), ws)
			var want []string
			var got bytes.Buffer
			read := make(chan error)
			go func() {
				_, err := io.Copy(&got, pr)
				read <- err
			}()
			var wg sync.WaitGroup
			for i, w := range pt.writers() {
				var part strings.Builder
				for j := range 1 + rnd.IntN(300) {
					fmt.Fprintf(&part, "part %d line %d %s\n", i, j, strings.Repeat("x", rnd.IntN(5000)))
				}
				want = append(want, part.String())
				closes := rnd.IntN(3) > 0                                // else left open to the end
				own := rand.New(rand.NewPCG(uint64(round), uint64(i)+2)) // its own: rand is not safe for goroutines
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := part.String()
					for len(s) > 0 {
						k := min(len(s), 1+own.IntN(9000))
						if _, err := w.Write([]byte(s[:k])); err != nil {
							t.Error(err)
						}
						s = s[k:]
					}
					if closes {
						w.(io.Closer).Close()
					}
				}()
			}
			wg.Wait()
			if err := pt.end(); err != nil {
				t.Fatal(err)
			}
			pt.release()
			pw.Close()
			if err := <-read; err != nil {
				t.Fatal(err)
			}
			if got.String() != strings.Join(want, "") {
				t.Errorf("the load read %d bytes, not the %d of the parts in order", got.Len(), len(strings.Join(want, "")))
			}
			for i, b := range repoSide {
				if b.String() != want[i] {
					t.Errorf("the repository's part %d is not what was written", i)
				}
			}
		})
	}
}

// A part that cannot be spooled fails the load, never the dump: the
// load sees an error, not a dump that ends early.
func TestPartedTeeSpoolFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var repo0, repo1 bytes.Buffer
	pt := newPartedTee(&detachable{pw: pw}, dir, []io.Writer{&repo0, &repo1})
	ws := pt.writers()
	read := make(chan error)
	go func() {
		_, err := io.Copy(io.Discard, pr)
		read <- err
	}()
	if _, err := ws[1].Write([]byte("second part\n")); err != nil {
		t.Fatalf("the dump failed for the spool: %v", err)
	}
	if _, err := ws[0].Write([]byte("first part\n")); err != nil {
		t.Fatal(err)
	}
	if err := pt.end(); err != nil {
		t.Fatal(err)
	}
	pt.release()
	pw.Close()
	err := <-read
	if err == nil || !strings.Contains(err.Error(), "keeping part 2 of the dump for the load") || !strings.Contains(err.Error(), "free space in") {
		t.Errorf("the load read %v, not the spool's failure", err)
	}
	if repo1.String() != "second part\n" {
		t.Errorf("the repository's part 2 holds %q", repo1.String())
	}
}
