package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The work after the rows: a table's key waits for every entry before it
// and holds up every one after, its indexes may be built side by side,
// its stats come last, the largest table's jobs first; a failure ends the
// work, and none is handed out while nothing may run but a part still
// loads.
func TestAfterRowsOrder(t *testing.T) {
	entry := func(name, typ, sql string) string {
		return "--\n-- Name: " + name + "; Type: " + typ + "; Schema: public; Owner: o\n--\n\n" + sql + "\n\n"
	}
	post := splitPostData("SET statement_timeout = 0;\n\n" +
		entry("big big_a", "INDEX", "CREATE INDEX big_a ON public.big USING btree (a);") +
		entry("big big_pkey", "CONSTRAINT", "ALTER TABLE ONLY public.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (id);") +
		entry("big_b", "INDEX", "CREATE INDEX big_b ON public.big USING btree (b);") +
		entry("big_c", "INDEX", "CREATE INDEX big_c ON public.big USING btree (c);") +
		entry("small_a", "INDEX", "CREATE INDEX small_a ON public.small USING btree (a);"))
	name := func(j afterJob) string {
		if j.entry < 0 {
			return j.t.name + " stats"
		}
		s := post.entries[j.entry].sql
		return s[strings.Index(s, "Name: ")+6 : strings.Index(s, ";")]
	}
	a := newAfterRows(post, Config{}, "o", 2)
	a.loaded([]copied{{"public.small", 10}}, nil)
	next := func(want string) afterJob {
		t.Helper()
		j, ok := a.next()
		if !ok || name(j) != want {
			t.Fatalf("next: %s (%v), want %s", name(j), ok, want)
		}
		return j
	}
	small := next("small_a")
	a.loaded([]copied{{"public.big", 1000}}, nil) // every part loaded now
	bigA := next("big big_a")
	a.done(small, nil)
	smallStats := next("public.small stats") // the key waits for big_a
	a.done(smallStats, nil)
	a.done(bigA, nil)
	pkey := next("big big_pkey")
	held := make(chan afterJob)
	go func() { j, _ := a.next(); held <- j }()
	time.Sleep(20 * time.Millisecond)
	select {
	case j := <-held:
		t.Fatalf("%s handed out while the key runs", name(j))
	default:
	}
	a.done(pkey, nil)
	bigB := <-held
	if name(bigB) != "big_b" {
		t.Fatalf("after the key: %s", name(bigB))
	}
	bigC := next("big_c") // beside big_b
	a.done(bigB, nil)
	a.done(bigC, nil)
	a.done(next("public.big stats"), nil)
	go func() { _, ok := a.next(); held <- afterJob{entry: map[bool]int{true: 1, false: 0}[ok]} }()
	if j := <-held; j.entry != 0 {
		t.Fatal("a job handed out after the last")
	}

	b := newAfterRows(post, Config{}, "o", 2)
	b.loaded([]copied{{"public.small", 10}}, nil)
	j, _ := b.next()
	b.done(j, errors.New("boom"))
	if _, ok := b.next(); ok {
		t.Error("a job handed out after a failure")
	}
}
