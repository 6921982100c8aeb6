package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Board draws the stages of one job that run side by side (a clone's
// snapshot, database loads and file sync) as one progress display, on
// one line: the whole job's files, bytes, rate and (once every running
// stage knows its size) time left, then each stage, running ones first:
//
//	clone blog/production → blog/staging  0:07  380/403 files  1.3 GiB  190.2 MiB/s  ETA 0:02  snapshot 1.0 GiB/1.5 GiB · database wp 320.0 MiB/400.0 MiB · safety snapshot ✓
//
// Each stage is a Bar made by Stage; the board draws it, and its Finish
// marks it done.
type Board struct {
	label   string
	w       io.Writer
	enabled bool
	mu      sync.Mutex // guards stages and the line on w
	stages  []*Bar
	start   time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
	now     func() time.Time
}

// NewBoard starts a board that draws on w when enabled.
func NewBoard(w io.Writer, label string, enabled bool) *Board {
	b := &Board{label: label, w: w, enabled: enabled, start: time.Now(), stop: make(chan struct{}), now: time.Now}
	if enabled {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

// Stage adds a stage to the board. Its bar draws nothing itself.
func (b *Board) Stage(label string) *Bar {
	s := New(b.w, label, false)
	s.board = b
	b.mu.Lock()
	b.stages = append(b.stages, s)
	b.mu.Unlock()
	return s
}

// Finish stops drawing and clears the line.
func (b *Board) Finish() {
	if !b.enabled {
		return
	}
	close(b.stop)
	b.wg.Wait()
	b.mu.Lock()
	fmt.Fprint(b.w, "\r\033[K")
	b.mu.Unlock()
}

func (b *Board) loop() {
	defer b.wg.Done()
	redraw(b.stop, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		fmt.Fprint(b.w, "\r\033[K"+b.line(termWidth(b.w)))
	})
}

// Line renders the board in at most width columns.
func (b *Board) Line(width int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.line(width)
}

func (b *Board) line(width int) string {
	elapsed := b.now().Sub(b.start)
	var files, totalFiles, bytes, totalBytes int64
	known := true // every stage still running says how much it has to do
	var running, done []string
	for _, s := range b.stages {
		f, tf, n, tn := s.files.Load(), s.totalFiles.Load(), s.bytes.Load(), s.totalBytes.Load()
		files, bytes = files+f, bytes+n
		totalFiles, totalBytes = totalFiles+max(tf, f), totalBytes+max(tn, n)
		switch {
		case s.finished.Load():
			done = append(done, s.label+" ✓")
		case tn > 0:
			running = append(running, s.label+" "+Bytes(n)+"/"+Bytes(tn))
		default:
			known = false
			running = append(running, s.label+" "+Bytes(n))
		}
	}
	head := b.label + "  " + Duration(elapsed)
	if totalFiles > 0 {
		head += fmt.Sprintf("  %d/%d files", files, totalFiles)
	}
	head += "  " + Bytes(bytes)
	if secs := elapsed.Seconds(); secs >= 1 && bytes > 0 {
		rate := float64(bytes) / secs
		head += "  " + Bytes(int64(rate)) + "/s"
		if known && len(running) > 0 && totalBytes > bytes {
			head += "  ETA " + Duration(time.Duration(float64(totalBytes-bytes)/rate*float64(time.Second)))
		}
	}
	line := head + "  " + strings.Join(append(running, done...), " · ")
	if r := []rune(line); len(r) > width {
		line = string(r[:width])
	}
	return line
}

// Writer returns w made safe to print to while the board draws: the
// board's line is cleared first, and drawn again at the next tick.
func (b *Board) Writer(w io.Writer) io.Writer {
	if !b.enabled {
		return w
	}
	return boardWriter{b, w}
}

type boardWriter struct {
	b *Board
	w io.Writer
}

func (bw boardWriter) Write(p []byte) (int, error) {
	bw.b.mu.Lock()
	defer bw.b.mu.Unlock()
	fmt.Fprint(bw.b.w, "\r\033[K")
	return bw.w.Write(p)
}
