package webapp

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cairn-backup/cairn/files"
)

// Setting is one generic config: rule: Key set to Value in File.
type Setting struct {
	File, Key, Value string
}

// Set applies settings to the files of tree, in order. The
// file's kind is told by its name: PHP (define('KEY', …) or $KEY = …;),
// .env (KEY=…), ini-like .ini/.conf/.cfg/.properties (key = …), YAML
// (top-level key: …). A PHP key must already be set (cairn changes a
// literal, it does not write code); in the others a missing key is added
// at the end. Each file is rewritten atomically. keep tells which files
// the target keeps as its own: those are left alone.
func Set(ctx context.Context, tree files.Target, settings []Setting, keep func(file string) bool, dryRun bool) ([]Change, error) {
	var changes []Change
	for _, s := range settings {
		rel := filepath.ToSlash(filepath.Clean(s.File))
		if filepath.IsAbs(s.File) || strings.HasPrefix(rel, "../") || rel == ".." {
			return changes, fmt.Errorf("config: file %q must be inside the environment's files", s.File)
		}
		if keep(rel) {
			continue
		}
		b, err := files.ReadFile(ctx, tree, rel)
		if err != nil {
			return changes, fmt.Errorf("config: %w", err)
		}
		out, changed, err := setKey(rel, string(b), s.Key, s.Value)
		if err != nil {
			return changes, fmt.Errorf("config: %s: %w", rel, err)
		}
		if !changed {
			continue
		}
		shown := s.Value
		if k := strings.ToLower(s.Key); strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "key") {
			shown = "(hidden)"
		}
		changes = append(changes, Change{File: rel, Key: s.Key, Value: shown})
		if !dryRun {
			if err := files.ReplaceFile(ctx, tree, rel, []byte(out), 0o644); err != nil {
				return changes, err
			}
		}
	}
	return changes, nil
}

func setKey(name, src, key, value string) (string, bool, error) {
	base := strings.ToLower(filepath.Base(name))
	ext := filepath.Ext(base)
	switch {
	case ext == ".php":
		return setPHP(src, key, value)
	case base == ".env" || strings.HasPrefix(base, ".env.") || ext == ".env":
		return setLine(src, key, value, regexp.MustCompile(`(?m)^(export\s+)?`+regexp.QuoteMeta(key)+`=(.*)$`), key+"="+quoteEnv(value), unquoteEnv)
	case ext == ".ini" || ext == ".conf" || ext == ".cfg" || ext == ".properties":
		return setLine(src, key, value, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(key)+`(\s*)=\s*(.*)$`), key+" = "+value, func(v string) string { return strings.TrimSpace(unquoteEnv(v)) })
	case ext == ".yml" || ext == ".yaml":
		return setLine(src, key, value, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(key)+`:(\s*)(.*)$`), key+": "+yamlQuote(value), func(v string) string { return strings.TrimSpace(unquoteEnv(v)) })
	}
	return "", false, fmt.Errorf("cairn does not know how to set a key in this kind of file (PHP, .env, .ini/.conf/.cfg/.properties and YAML it does)")
}

// setLine replaces the line re matches (its last group is the value) or
// appends line.
func setLine(src, key, value string, re *regexp.Regexp, line string, current func(string) string) (string, bool, error) {
	m := re.FindStringSubmatchIndex(src)
	if m == nil {
		if src != "" && !strings.HasSuffix(src, "\n") {
			src += "\n"
		}
		return src + line + "\n", true, nil
	}
	old := src[m[len(m)-2]:m[len(m)-1]]
	if current(old) == value {
		return src, false, nil
	}
	return src[:m[0]] + line + src[m[1]:], true, nil
}

func setPHP(src, key, value string) (string, bool, error) {
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`define\s*\(\s*['"]` + regexp.QuoteMeta(key) + `['"]\s*,\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[0-9.]+|true|false)\s*\)`),
		regexp.MustCompile(`\$` + regexp.QuoteMeta(key) + `\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[0-9.]+|true|false)\s*;`),
	} {
		if m := re.FindStringSubmatchIndex(src); m != nil {
			lit := src[m[2]:m[3]]
			if phpString(lit) == value {
				return src, false, nil
			}
			return src[:m[2]] + phpQuote(value) + src[m[3]:], true, nil
		}
	}
	return "", false, fmt.Errorf("%s is not set there (cairn changes an existing define() or $variable, it does not add code)", key)
}

func yamlQuote(v string) string {
	if v == "" || strings.ContainsAny(v, ":#{}[],&*?|<>=!%@`'\"") || strings.TrimSpace(v) != v {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return v
}
