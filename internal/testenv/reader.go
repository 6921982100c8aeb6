package testenv

import (
	"context"
	"io"
)

// CancelAfter reads N bytes from R, then cancels the context (Cancel) and
// fails like a stalled stream would: Ctrl-C in the middle of a restore.
type CancelAfter struct {
	R      io.Reader
	N      int
	Cancel func()
}

func (c *CancelAfter) Read(p []byte) (int, error) {
	if c.N <= 0 {
		c.Cancel()
		return 0, context.Canceled
	}
	if len(p) > c.N {
		p = p[:c.N]
	}
	k, err := c.R.Read(p)
	c.N -= k
	return k, err
}
