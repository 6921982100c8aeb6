package sqldump

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// pushLines writes in to a Lines in chunks of the sizes given in turn and
// returns the lines it handed over, each after its kind's letter (o, h, r).
func pushLines(in string, chunks ...int) ([]string, error) {
	var out []string
	s := Lines{Line: func(kind LineKind, line []byte) error {
		out = append(out, string("ohr"[kind])+string(line))
		return nil
	}}
	for p, k := []byte(in), 0; len(p) > 0; k++ {
		n := min(len(p), chunks[k%len(chunks)])
		if _, err := s.Write(p[:n]); err != nil {
			return out, err
		}
		p = p[n:]
	}
	return out, s.Close()
}

func TestLines(t *testing.T) {
	in := "-- x\nINSERT INTO `t` VALUES\n(1,'a'),\n(2,'b;');\nINSERT INTO `t``u` VALUES\n(3),\r\n(4);\n(5),\nINSERT INTO `t` VALUES (6);\n(7);"
	got, err := pushLines(in, 5)
	want := []string{"o-- x\n", "hINSERT INTO `t` VALUES\n", "r(1,'a'),\n", "r(2,'b;');\n", "hINSERT INTO `t``u` VALUES\n",
		"o(3),\r\n", "o(4);\n", "o(5),\n", "oINSERT INTO `t` VALUES (6);\n", "o(7);"}
	if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	stop := errors.New("stop")
	s := Lines{Line: func(LineKind, []byte) error { return stop }}
	if _, err := s.Write([]byte("a\nb\n")); !errors.Is(err, stop) {
		t.Errorf("Write: %v", err)
	}
	if _, err := s.Write([]byte("c\n")); !errors.Is(err, stop) {
		t.Errorf("Write after an error: %v", err)
	}
}

// FuzzLines: Lines never panics; its lines put back together are the
// input (identity); however the input is cut into writes, the lines and
// their kinds are the same.
func FuzzLines(f *testing.F) {
	f.Add("INSERT INTO `t` VALUES\n(1,'a'),\n(2,'b');\n-- x\n", 3, 5)
	f.Add("INSERT INTO `t` VALUES\n(1,'a),\n(2),(3);\r\nINSERT INTO `` VALUES\n(x)", 1, 64)
	f.Fuzz(func(t *testing.T, in string, a, b int) {
		whole, err := pushLines(in, len(in)+1)
		if err != nil {
			t.Fatal(err)
		}
		var back strings.Builder
		for _, l := range whole {
			back.WriteString(l[1:])
		}
		if back.String() != in {
			t.Fatalf("the lines of %q put back together are %q", in, back.String())
		}
		chunked, _ := pushLines(in, 1+abs(a)%64, 1+abs(b)%64)
		if fmt.Sprintf("%q", chunked) != fmt.Sprintf("%q", whole) {
			t.Fatalf("%q in chunks: %q, whole: %q", in, chunked, whole)
		}
	})
}
