package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Board draws the stages of one job that run side by side (a clone's
// snapshot, database loads and file sync) on one line:
//
//	clone blog/production → blog/staging  0:07  snapshot 1.0/1.5 GiB · database wp 320 MiB · files done
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
	parts := make([]string, 0, len(b.stages))
	for _, s := range b.stages {
		bytes, tb := s.bytes.Load(), s.totalBytes.Load()
		switch {
		case s.finished.Load():
			parts = append(parts, s.label+" done")
		case tb > 0:
			parts = append(parts, s.label+" "+Bytes(bytes)+"/"+Bytes(tb))
		default:
			parts = append(parts, s.label+" "+Bytes(bytes))
		}
	}
	line := b.label + "  " + Duration(b.now().Sub(b.start)) + "  " + strings.Join(parts, " · ")
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
