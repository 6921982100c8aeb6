// Package pattern matches slash-separated relative paths against
// gitignore-style patterns, the form used by exclude: and preserve: in
// cairn.yaml and by --exclude.
//
//	cache/          a directory named cache at any depth, and all below it
//	*.log           any file or directory whose name ends in .log
//	/wp-config.php  only at the root of the tree
//	wp-content/uploads/   anchored (it holds a slash): that path only
//	**/tmp          tmp at any depth;  a/**/b  b anywhere below a
//	!keep.log       re-include something an earlier pattern excluded
//
// A path matches when it, or any directory above it, matches.
package pattern

import (
	"fmt"
	"path"
	"strings"
)

// Set is a compiled list of patterns. The zero Set matches nothing.
type Set struct {
	rules []rule
}

type rule struct {
	segs     []string
	anchored bool
	dirOnly  bool
	negate   bool
	text     string
}

// Compile checks and compiles patterns.
func Compile(patterns ...string) (Set, error) {
	var s Set
	for _, p := range patterns {
		orig := p
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		var r rule
		r.text = orig
		if strings.HasPrefix(p, "!") {
			r.negate, p = true, p[1:]
		}
		if strings.HasSuffix(p, "/") {
			r.dirOnly, p = true, strings.TrimRight(p, "/")
		}
		if strings.HasPrefix(p, "/") {
			r.anchored, p = true, strings.TrimLeft(p, "/")
		}
		if strings.Contains(p, "/") {
			r.anchored = true
		}
		if p == "" {
			return Set{}, fmt.Errorf("pattern %q matches nothing", orig)
		}
		r.segs = strings.Split(path.Clean(p), "/")
		for _, seg := range r.segs {
			if _, err := path.Match(seg, ""); err != nil {
				return Set{}, fmt.Errorf("pattern %q: %v", orig, err)
			}
		}
		s.rules = append(s.rules, r)
	}
	return s, nil
}

// MustCompile is Compile for patterns known to be valid.
func MustCompile(patterns ...string) Set {
	s, err := Compile(patterns...)
	if err != nil {
		panic(err)
	}
	return s
}

// Empty reports whether the set has no patterns.
func (s Set) Empty() bool { return len(s.rules) == 0 }

// Match reports whether the relative path p (slash-separated, no leading
// slash) is matched, given whether p is a directory.
func (s Set) Match(p string, isDir bool) bool {
	if len(s.rules) == 0 || p == "" || p == "." {
		return false
	}
	segs := strings.Split(p, "/")
	// A matched ancestor directory matches everything below it.
	for i := 1; i < len(segs); i++ {
		if s.matchOne(segs[:i], true) {
			return true
		}
	}
	return s.matchOne(segs, isDir)
}

func (s Set) matchOne(segs []string, isDir bool) bool {
	matched := false
	for _, r := range s.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.match(segs) {
			matched = !r.negate
		}
	}
	return matched
}

func (r rule) match(segs []string) bool {
	if !r.anchored {
		ok, _ := path.Match(r.segs[0], segs[len(segs)-1])
		return ok
	}
	return matchSegs(r.segs, segs)
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}
