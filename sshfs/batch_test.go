package sshfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// slowWriter records each write it is given, as one SSH packet would be.
type slowWriter struct {
	mu     sync.Mutex
	writes [][]byte
	fail   error
	closed bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (w *slowWriter) Close() error { w.closed = true; return nil }

// Requests written one after the other arrive whole and in order, in no
// more writes than requests, and Close sends what is queued.
func TestBatcherKeepsOrder(t *testing.T) {
	w := &slowWriter{}
	b := newBatcher(w)
	var want bytes.Buffer
	for i := range 2000 {
		p := []byte(fmt.Sprintf("request %d;", i))
		want.Write(p)
		if _, err := b.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(w.writes, nil); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("sent %d bytes, not the %d written in order", len(got), want.Len())
	}
	if len(w.writes) > 2000 || !w.closed {
		t.Errorf("%d writes for 2000 requests; closed %v", len(w.writes), w.closed)
	}
	if _, err := b.Write([]byte("late")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("a write after Close: %v", err)
	}
}

// A failed write fails every later one, and Close.
func TestBatcherFailureSticks(t *testing.T) {
	boom := errors.New("connection lost")
	w := &slowWriter{fail: boom}
	b := newBatcher(w)
	b.Write([]byte("a")) //nolint:errcheck // the failure shows on a later call
	var err error
	for range 2000 { // the sender meets the failure soon after
		if _, err = b.Write([]byte("b")); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if cerr := b.Close(); !errors.Is(cerr, boom) || !errors.Is(err, boom) {
		t.Errorf("write error %v, close error %v; want %v", err, cerr, boom)
	}
}
