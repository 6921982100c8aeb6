package postgres

import (
	"io"
	"strings"
	"testing"
)

const postDataSample = `--
-- PostgreSQL database dump
--

\restrict abc

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET row_security = off;

SET default_tablespace = '';

--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: o
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_pkey PRIMARY KEY (id);


SET default_tablespace = fast;

--
-- Name: odd ON x; Type: INDEX; Schema: public; Owner: o
--

CREATE UNIQUE INDEX "odd ON x" ON public."odd * name" USING btree ("x.y");


--
-- Name: t_a; Type: INDEX; Schema: public; Owner: o
--

CREATE INDEX t_a ON public.t USING btree (a);

ALTER TABLE public.t CLUSTER ON t_a;


SET default_tablespace = '';

--
-- Name: parent_a; Type: INDEX; Schema: public; Owner: o
--

CREATE INDEX parent_a ON ONLY public.parent USING btree (a);


--
-- Name: u u_t_fkey; Type: FK CONSTRAINT; Schema: public; Owner: o
--

ALTER TABLE ONLY public.u
    ADD CONSTRAINT u_t_fkey FOREIGN KEY (t) REFERENCES public.t(id);


--
-- PostgreSQL database dump complete
--

\unrestrict abc

`

// The schema after the data splits into pg_dump's entries: each table's
// keys and indexes (not a partitioned table's, not a foreign key), and
// the rest, each with the default_tablespace in force there.
func TestSplitPostData(t *testing.T) {
	p := splitPostData(postDataSample)
	if strings.Contains(p.head, "restrict") || !strings.Contains(p.head, "set_config") || !strings.Contains(p.head, "row_security") {
		t.Errorf("head %q", p.head)
	}
	got := map[string]int{}
	for table, es := range p.byTable {
		got[table] = len(es)
	}
	if len(got) != 2 || got["public.t"] != 2 || got[`public."odd * name"`] != 1 {
		t.Errorf("tables: %v", got)
	}
	if e := p.entries[p.byTable["public.t"][1]]; e.tablespace != "fast" || !strings.Contains(e.sql, "CLUSTER ON t_a") {
		t.Errorf("t_a: %+v", e)
	}
	if e := p.entries[p.byTable["public.t"][0]]; e.tablespace != "''" {
		t.Errorf("t_pkey: %+v", e)
	}
	// The key and the index that is clustered on need their table alone;
	// an index's build alone does not.
	if key, clustered, odd := p.byTable["public.t"][0], p.byTable["public.t"][1], p.byTable[`public."odd * name"`][0]; !p.whole(key) || !p.whole(clustered) || p.whole(odd) {
		t.Errorf("alone: key %v, clustered index %v, plain index %v", p.whole(key), p.whole(clustered), p.whole(odd))
	}
	// public.t built; the rest keeps the odd table's index (its rows never
	// came), the partitioned one's and the foreign key, in order.
	p.built["public.t"] = true
	b, _ := io.ReadAll(p.rest())
	rest := string(b)
	for _, gone := range []string{"t_pkey", "CREATE INDEX t_a", "restrict"} {
		if strings.Contains(rest, gone) {
			t.Errorf("rest holds %s:\n%s", gone, rest)
		}
	}
	odd, parent, fk := strings.Index(rest, `"odd ON x"`), strings.Index(rest, "parent_a"), strings.Index(rest, "u_t_fkey")
	if odd < 0 || parent < odd || fk < parent {
		t.Errorf("rest out of order or short:\n%s", rest)
	}
	if !strings.Contains(rest, "SET default_tablespace = fast;\nSET default_tablespace = fast;\n\n--\n-- Name: odd ON x") {
		t.Errorf("the odd index loses its tablespace:\n%s", rest)
	}
}
