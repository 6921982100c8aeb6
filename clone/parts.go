package clone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cairn-backup/cairn"
)

// A source database that dumps in parts (cairn.PartedDumper) keeps doing
// so in a clone: its parts go to the repository as in a snapshot, and to
// the load as one stream, the parts one after the other (what the
// snapshot's dump reads back as). The part the load has reached flows
// straight to it; a part after it is spooled to an unlinked temporary
// file beside the repository's local state until the load gets there
// (the load is at the dump's pace, so the spool holds the parts dumped
// while an earlier one loads). The spool is plain SQL readable by root
// and cairn's user only, while the clone runs.

// teePartedDatabase is a teeDatabase whose database dumps in parts.
type teePartedDatabase struct {
	teeDatabase
	parted cairn.PartedDumper
	spool  string // the spools' directory
}

func (t teePartedDatabase) DumpParts(ctx context.Context, parts func(n int) []io.Writer) ([]cairn.TableStat, error) {
	var pt *partedTee
	stats, err := t.parted.DumpParts(ctx, func(n int) []io.Writer {
		pt = newPartedTee(t.tee, t.spool, parts(n))
		return pt.writers()
	})
	if err == nil && pt != nil {
		err = pt.end()
	}
	if pt != nil {
		pt.release()
	}
	if pt == nil && err == nil {
		err = errors.New("the dump gave no parts")
	}
	t.tee.pw.CloseWithError(err) // nil: the load reads io.EOF
	return stats, err
}

// partedTee hands parts to out in order, as they come (see above).
type partedTee struct {
	out   *detachable
	dir   string
	mu    sync.Mutex
	head  int // the part out is at
	parts []*teePart
}

// teePart is one part's writer: to the repository's, and to out or the
// part's spool.
type teePart struct {
	t     *partedTee
	i     int
	w     io.Writer
	live  bool     // flows to out (it is the head, its spool read)
	ended bool     // written whole
	spool *os.File // what was written before it was the head
	wrote int64    // bytes in spool
	read  int64    // of them, handed to out
	err   error    // the spool's failure
}

func newPartedTee(out *detachable, dir string, ws []io.Writer) *partedTee {
	t := &partedTee{out: out, dir: dir}
	for i, w := range ws {
		t.parts = append(t.parts, &teePart{t: t, i: i, w: w, live: i == 0})
	}
	return t
}

func (t *partedTee) writers() []io.Writer {
	ws := make([]io.Writer, len(t.parts))
	for i, p := range t.parts {
		ws[i] = p
	}
	return ws
}

func (p *teePart) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		return n, err
	}
	p.t.mu.Lock()
	if p.live {
		// Only this part's writer writes to out until it ends.
		p.t.mu.Unlock()
		p.t.out.Write(b) //nolint:errcheck // a detachable never fails
		return n, nil
	}
	defer p.t.mu.Unlock()
	if p.err != nil || p.t.out.gone.Load() {
		return n, nil
	}
	if p.spool == nil {
		p.spool, p.err = spoolFile(p.t.dir)
	}
	if p.err == nil {
		_, p.err = p.spool.WriteAt(b, p.wrote)
		p.wrote += int64(len(b))
	}
	return n, nil
}

// Close ends the part (see cairn.PartedDumper): once the head's, out
// goes on to the next part.
func (p *teePart) Close() error {
	if c, ok := p.w.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return err
		}
	}
	p.t.mu.Lock()
	if p.ended {
		p.t.mu.Unlock()
		return nil
	}
	p.ended = true
	// A live part is the head with no one handing its spool to out; else
	// whoever does goes on past it once it is handed.
	live := p.live
	p.t.mu.Unlock()
	if live {
		p.t.advance()
	}
	return nil
}

// advance moves out past the head, which has ended: each next part's
// spool is handed to out, and the first part still dumping goes live.
func (t *partedTee) advance() {
	buf := make([]byte, 1<<20)
	for {
		t.mu.Lock()
		t.head++
		if t.head == len(t.parts) {
			t.mu.Unlock()
			return
		}
		p := t.parts[t.head]
		t.mu.Unlock()
		for {
			t.mu.Lock()
			if p.err != nil {
				err := p.err
				t.mu.Unlock()
				t.out.pw.CloseWithError(fmt.Errorf("keeping part %d of the dump for the load: %w. Try: free space in %s", p.i+1, err, t.dir))
				t.out.gone.Store(true)
				return
			}
			if p.read == p.wrote {
				p.closeSpool()
				if !p.ended {
					p.live = true
					t.mu.Unlock()
					return
				}
				t.mu.Unlock()
				break // on to the next part
			}
			n := int(min(int64(len(buf)), p.wrote-p.read))
			at, f := p.read, p.spool
			t.mu.Unlock()
			// The part's writer appends beyond at meanwhile.
			if _, err := f.ReadAt(buf[:n], at); err != nil {
				t.mu.Lock()
				p.err = err
				t.mu.Unlock()
				continue
			}
			t.out.Write(buf[:n]) //nolint:errcheck // a detachable never fails
			t.mu.Lock()
			p.read += int64(n)
			t.mu.Unlock()
		}
	}
}

// end ends the parts the dump left open, in order: out then holds the
// whole dump.
func (t *partedTee) end() error {
	for _, p := range t.parts {
		if err := p.Close(); err != nil {
			return err
		}
	}
	return nil
}

// release closes what spools are left (the dump failed).
func (t *partedTee) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.parts {
		p.closeSpool()
	}
}

func (p *teePart) closeSpool() {
	if p.spool != nil {
		p.spool.Close()
		p.spool = nil
	}
}

// spoolFile makes an unlinked temporary file in dir, cairn's state
// directory for the repository (never a target: see Repo.StateDir).
func spoolFile(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil { // cairn's state, never a target
		return nil, err
	}
	f, err := os.CreateTemp(dir, "clone-part-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil { // the file CreateTemp just made, in cairn's state
		f.Close()
		return nil, err
	}
	return f, nil
}
