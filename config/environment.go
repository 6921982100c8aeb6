package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairn-backup/cairn"
)

// convert checks the sites and environments as written and turns them
// into the domain's, once: files locations, DSNs and after_restore
// actions are parsed here and nowhere else. A mistake in a site's names
// fails the whole file; one in an environment's values only that
// environment, when it is used (Env).
func (c *Config) convert(sites map[string]*siteDoc) error {
	base := ""
	if c.File != "" {
		base = filepath.Dir(c.File)
	}
	for _, siteName := range sortedKeys(sites) {
		doc := sites[siteName]
		at := c.File + ":" + fmt.Sprint(lineOf(c.doc, "sites", siteName))
		if !cairn.ValidName(siteName) {
			return fmt.Errorf("%s: sites.%s: a site name may hold letters, digits, '.', '_' and '-' only", at, siteName)
		}
		if doc == nil || len(doc.Environments) == 0 {
			return fmt.Errorf("%s: sites.%s: no environments. Try: add environments: {production: {files: /var/www/html}}", at, siteName)
		}
		site := &Site{Name: siteName, Environments: map[string]*cairn.Environment{}, Schedule: doc.Schedule, Retention: doc.Retention}
		c.Sites[siteName] = site
		replace := replacements(doc.Replace)
		for _, envName := range sortedKeys(doc.Environments) {
			key := "sites." + siteName + ".environments." + envName
			if !cairn.ValidName(envName) {
				return fmt.Errorf("%s:%d: %s: an environment name may hold letters, digits, '.', '_' and '-' only", c.File, lineOf(c.doc, "sites", siteName, "environments", envName), key)
			}
			e, err := c.environment(key, siteName, envName, doc.Environments[envName], base)
			if err == nil && doc.Environments[envName] != nil {
				var actions []cairn.Action
				if actions, err = cairn.ParseActions(doc.Environments[envName].AfterRestore); err != nil {
					c.targetErrs[siteName+"/"+envName] = c.invalid(key+".after_restore", err)
				}
				e.AfterRestore, err = actions, nil
			}
			e.Replace = replace
			site.Environments[envName] = e
			c.envs[e.Name()] = e
			if err != nil {
				// Reported when the environment is used (Env), so that one
				// environment's mistake stops no other's backups.
				c.envErrs[e.Name()] = err
			}
		}
	}
	return nil
}

// environment converts one environment; key is its key path, for
// messages.
func (c *Config) environment(key, site, env string, doc *environmentDoc, base string) (*cairn.Environment, error) {
	e := &cairn.Environment{Site: site, Env: env}
	if doc == nil {
		return e, nil
	}
	e.URL, e.Exclude, e.Preserve, e.Protected = doc.URL, doc.Exclude, doc.Preserve, doc.Protected
	for _, r := range doc.Config {
		e.Settings = append(e.Settings, cairn.Setting{File: r.File, Key: r.Key, Value: r.Value})
	}
	for _, dsn := range doc.Databases {
		if doc.SSH != "" {
			dsn = throughSSH(dsn, doc.SSH)
		}
		e.Databases = append(e.Databases, cairn.NewDSN(dsn))
	}
	for i, f := range doc.Files {
		where := key + ".files"
		if len(doc.Files) > 1 {
			where = fmt.Sprintf("%s[%d]", where, i)
		}
		loc, err := cairn.ParseLocation(f, base)
		if err != nil {
			return e, c.invalid(where, err)
		}
		for _, other := range e.Nodes {
			if other.Key() == loc.Key() {
				return e, c.invalid(where, fmt.Errorf("%w: %s is listed twice", cairn.ErrInvalidArgument, f))
			}
		}
		e.Nodes = append(e.Nodes, loc)
	}
	if len(e.Nodes) > 0 {
		e.Files = e.Nodes[0]
	}
	return e, nil
}

// throughSSH adds ssh=host to a DSN that names no SSH host of its own.
func throughSSH(dsn, host string) string {
	d, err := cairn.SplitDSN(dsn)
	if err != nil {
		return dsn // the database's own parser says what is wrong
	}
	_, query, hasQuery := strings.Cut(d.Rest, "?")
	if q, err := url.ParseQuery(query); err == nil && q.Has("ssh") {
		return dsn
	}
	sep := "?"
	if hasQuery {
		sep = "&"
	}
	return dsn + sep + "ssh=" + url.QueryEscape(host)
}

// replacements are a site's replace: pairs, in a stable order.
func replacements(m map[string]string) []cairn.Replacement {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]cairn.Replacement, 0, len(keys))
	for _, k := range keys {
		if k != "" {
			out = append(out, cairn.Replacement{From: k, To: m[k]})
		}
	}
	return out
}

// invalid is a config error at key: file, line, key, what is wrong.
func (c *Config) invalid(key string, err error) error {
	return fmt.Errorf("%s: %s: %w", c.Where(key), strings.TrimPrefix(err.Error(), cairn.ErrInvalidArgument.Error()+": "), cairn.ErrInvalidArgument)
}
