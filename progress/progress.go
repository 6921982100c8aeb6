// Package progress draws a one-line progress bar (files, bytes, rate, ETA)
// on a terminal. It implements cairn.Progress; on anything but a terminal it
// draws nothing, so piped output stays clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Bar counts work and, when enabled, redraws itself a few times a second.
type Bar struct {
	label                  string
	w                      io.Writer
	enabled                bool
	files, bytes           atomic.Int64
	totalFiles, totalBytes atomic.Int64
	start                  time.Time
	stop                   chan struct{}
	wg                     sync.WaitGroup
	now                    func() time.Time
	board                  *Board      // the board drawing it, if any
	finished               atomic.Bool // Finish was called
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// New starts a bar that draws on w when enabled.
func New(w io.Writer, label string, enabled bool) *Bar {
	b := &Bar{label: label, w: w, enabled: enabled, start: time.Now(), stop: make(chan struct{}), now: time.Now}
	if enabled {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

// Visible reports whether the bar is drawn.
func (b *Bar) Visible() bool { return b.enabled }

// Total sets the expected amount of work.
func (b *Bar) Total(files, bytes int64) {
	b.totalFiles.Store(files)
	b.totalBytes.Store(bytes)
}

// Done adds finished work.
func (b *Bar) Done(files, bytes int64) {
	b.files.Add(files)
	b.bytes.Add(bytes)
}

// width is the terminal's width, or 80.
func (b *Bar) width() int { return termWidth(b.w) }

// termWidth is the width of the terminal w is, less one, or 80.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			return w - 1
		}
	}
	return 80
}

// Finish stops drawing and clears the line (on a board: marks the stage
// done).
func (b *Bar) Finish() {
	b.finished.Store(true)
	if !b.enabled {
		return
	}
	close(b.stop)
	b.wg.Wait()
	fmt.Fprint(b.w, "\r\033[K")
}

func (b *Bar) loop() {
	defer b.wg.Done()
	redraw(b.stop, func() { fmt.Fprint(b.w, "\r\033[K"+b.Line(b.width())) })
}

// redraw calls draw a few times a second until stop is closed.
func redraw(stop <-chan struct{}, draw func()) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			draw()
		}
	}
}

// Line renders the bar's current state in at most width columns.
func (b *Bar) Line(width int) string {
	elapsed := b.now().Sub(b.start)
	files, bytes := b.files.Load(), b.bytes.Load()
	tf, tb := b.totalFiles.Load(), b.totalBytes.Load()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(bytes) / s
	}
	parts := []string{b.label}
	if tf > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d files", files, tf))
	} else {
		parts = append(parts, fmt.Sprintf("%d files", files))
	}
	if tb > 0 {
		parts = append(parts, Bytes(bytes)+"/"+Bytes(tb))
	} else {
		parts = append(parts, Bytes(bytes))
	}
	parts = append(parts, Bytes(int64(rate))+"/s")
	if tb > 0 && rate > 0 && bytes <= tb {
		eta := time.Duration(float64(tb-bytes) / rate * float64(time.Second))
		parts = append(parts, "ETA "+Duration(eta))
	}
	line := strings.Join(parts, "  ")
	if tb > 0 {
		if room := width - len(line) - 4; room >= 10 {
			filled := int(float64(room) * float64(min(bytes, tb)) / float64(tb))
			line += "  [" + strings.Repeat("=", filled) + strings.Repeat(" ", room-filled) + "]"
		}
	}
	if len(line) > width {
		line = line[:width]
	}
	return line
}

// Bytes formats a byte count for people (binary units).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Duration formats a duration as h:mm:ss or m:ss.
func Duration(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
