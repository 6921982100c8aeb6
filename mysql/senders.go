package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// senders run a load's row batches on connections of their own, several
// at once, while the loader reads on: the server inserts on as many cores
// as there are senders, as myloader's threads do. Each batch is its own
// transaction (the load is into scratch tables: the swap, not the load,
// is what readers see at once). A sender has the loader's session
// settings: every SET the dump runs is run on each sender too, once the
// batches before it are in.
type senders struct {
	conns []*sql.Conn
	jobs  chan batch
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
	busy  sync.WaitGroup // batches given and not yet run
}

// batch is one INSERT of many rows, with its own copy of the values.
type batch struct {
	table, query string
	args         []any
}

// newSenders opens n connections like conn's (dc) and starts them.
func newSenders(ctx context.Context, db *sql.DB, n int) (*senders, error) {
	s := &senders{jobs: make(chan batch, n)}
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, c)
	}
	for _, c := range s.conns {
		s.wg.Add(1)
		go s.run(ctx, c)
	}
	return s, nil
}

func (s *senders) run(ctx context.Context, c *sql.Conn) {
	defer s.wg.Done()
	prepared := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range prepared {
			st.Close()
		}
	}()
	for b := range s.jobs {
		if s.failed() == nil {
			st, ok := prepared[b.query]
			var err error
			if !ok && len(prepared) < 8 {
				if st, err = c.PrepareContext(ctx, b.query); err == nil {
					prepared[b.query] = st
				}
			}
			if err == nil {
				if st != nil {
					_, err = st.ExecContext(ctx, b.args...)
				} else {
					_, err = c.ExecContext(ctx, b.query, b.args...)
				}
			}
			if err != nil {
				s.fail(sendError{fmt.Errorf("load the rows of %s: %w%s", b.table, err, hint(err.Error()))})
			}
		}
		s.busy.Done()
	}
}

func (s *senders) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *senders) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// send gives a batch to the next free sender, waiting for one.
func (s *senders) send(ctx context.Context, b batch) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.busy.Add(1)
	select {
	case s.jobs <- b:
		return nil
	case <-ctx.Done():
		s.busy.Done()
		return ctx.Err()
	}
}

// drain waits until every batch given is in, and says if one failed.
func (s *senders) drain() error {
	s.busy.Wait()
	return s.failed()
}

// each runs a statement (a session setting) on every sender, once the
// batches before it are in.
func (s *senders) each(ctx context.Context, stmt string) error {
	if err := s.drain(); err != nil {
		return err
	}
	for _, c := range s.conns {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// close stops the senders (after the batches given) and their
// connections.
func (s *senders) close() error {
	if s.jobs != nil {
		close(s.jobs)
		s.jobs = nil
	}
	s.wg.Wait()
	for _, c := range s.conns {
		c.Close()
	}
	return s.failed()
}
