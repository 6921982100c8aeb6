package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// senders put a load's rows in on connections of their own while the
// loader reads on: the server inserts one table while cairn reads the
// next, as myloader loads tables on several threads. Each table's rows go
// to one sender, in the dump's order and in one transaction (the bulk
// path MariaDB takes for an empty table needs that), tables in turn to
// the next sender. A sender has the dump's session settings: every SET
// the dump runs is logged, and a sender runs those logged before a
// batch before it runs the batch.
type senders struct {
	conns []*sql.Conn
	work  []chan item
	next  int
	wg    sync.WaitGroup

	mu      sync.Mutex
	err     error
	sets    []string       // the dump's SET statements, in order
	pending map[string]int // tables with work not done, by name
	idle    *sync.Cond     // signalled when work is done
}

// item is one step of a table's load on its sender.
type item struct {
	kind         itemKind
	table, query string
	args         []any
	plan         loadPlan
	sets         int // how many of the logged SETs come before it
}

type itemKind int

const (
	startTable itemKind = iota
	rowsBatch
	endTable
)

// newSenders opens n connections of db and starts them.
func newSenders(ctx context.Context, db *sql.DB, n int) (*senders, error) {
	s := &senders{pending: map[string]int{}}
	s.idle = sync.NewCond(&s.mu)
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, c)
		s.work = append(s.work, make(chan item, 4))
	}
	for i, c := range s.conns {
		s.wg.Add(1)
		go s.run(ctx, c, s.work[i])
	}
	return s, nil
}

func (s *senders) run(ctx context.Context, c *sql.Conn, work chan item) {
	defer s.wg.Done()
	applied := 0
	var full *sql.Stmt // the prepared statement of the table's full batches
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	fullQuery := ""
	for it := range work {
		if s.failed() == nil {
			err := s.apply(ctx, c, &applied, it.sets)
			if err == nil {
				switch it.kind {
				case startTable:
					q := "SET @cairn_autocommit = @@autocommit, autocommit = 0"
					if it.plan == byBatchesInOrder {
						q += ", @cairn_unique_checks = @@unique_checks, unique_checks = 1"
					}
					_, err = c.ExecContext(ctx, q)
				case rowsBatch:
					if it.query != fullQuery && len(it.args) > 0 {
						if full != nil {
							full.Close()
							full, fullQuery = nil, ""
						}
						if full, err = c.PrepareContext(ctx, it.query); err == nil {
							fullQuery = it.query
						}
					}
					if err == nil {
						_, err = full.ExecContext(ctx, it.args...)
					}
				case endTable:
					if _, err = c.ExecContext(ctx, "COMMIT"); err == nil {
						q := "SET autocommit = @cairn_autocommit"
						if it.plan == byBatchesInOrder {
							q += ", unique_checks = @cairn_unique_checks"
						}
						_, err = c.ExecContext(ctx, q)
					}
				}
			}
			if err != nil {
				s.fail(sendError{fmt.Errorf("load the rows of %s: %w%s", it.table, err, hint(err.Error()))})
			}
		}
		s.done(it.table)
	}
}

// apply runs the logged SETs up to n on c.
func (s *senders) apply(ctx context.Context, c *sql.Conn, applied *int, n int) error {
	for *applied < n {
		s.mu.Lock()
		q := s.sets[*applied]
		s.mu.Unlock()
		if _, err := c.ExecContext(ctx, q); err != nil {
			return err
		}
		*applied++
	}
	return nil
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

func (s *senders) done(table string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[table]--; s.pending[table] == 0 {
		delete(s.pending, table)
	}
	s.idle.Broadcast()
}

// set logs a SET statement of the dump, for the senders' sessions.
func (s *senders) set(stmt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets = append(s.sets, stmt)
}

// start gives table's rows to the next sender; send and end go to it too.
func (s *senders) start(ctx context.Context, table string, plan loadPlan) (int, error) {
	w := s.next
	s.next = (s.next + 1) % len(s.work)
	return w, s.give(ctx, w, item{kind: startTable, table: table, plan: plan})
}

func (s *senders) give(ctx context.Context, w int, it item) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.mu.Lock()
	it.sets = len(s.sets)
	s.pending[it.table]++
	s.mu.Unlock()
	select {
	case s.work[w] <- it:
		return nil
	case <-ctx.Done():
		s.done(it.table)
		return ctx.Err()
	}
}

// busy tells whether table has rows not yet in.
func (s *senders) busy(table string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending[table] > 0
}

// drain waits until every table's rows are in, and says if any failed.
func (s *senders) drain() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) > 0 && s.err == nil {
		s.idle.Wait()
	}
	return s.err
}

// close stops the senders (after the work given) and their connections.
func (s *senders) close() error {
	for _, w := range s.work {
		close(w)
	}
	s.work = nil
	s.wg.Wait()
	for _, c := range s.conns {
		c.Close()
	}
	return s.failed()
}
