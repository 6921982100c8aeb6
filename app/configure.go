package app

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Target is what a copy of an application must point at.
type Target struct {
	URL string // the environment's URL ("" leaves URLs alone)
	// Database is the first database's DSN (mysql://user:pass@host:port/name);
	// "" leaves the database settings alone.
	Database string
}

// Change is one setting Configure changed (values with secrets hidden).
type Change struct {
	File, Key, Value string
}

// Configure points the copy of a WordPress tree at dir to its own database
// and URL: DB_NAME, DB_USER, DB_PASSWORD and DB_HOST in wp-config.php, and
// WP_HOME and WP_SITEURL where the file defines them. The file is rewritten
// atomically, its mode kept; everything else in it stays as it was. Other
// applications are not configured yet (ErrUnknown).
func Configure(dir string, t Target, dryRun bool) ([]Change, error) {
	path := filepath.Join(dir, "wp-config.php")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrUnknown)
	}
	src := string(b)
	values := map[string]string{}
	if t.Database != "" {
		u, err := url.Parse(t.Database)
		if err != nil || (u.Scheme != "mysql" && u.Scheme != "mariadb") {
			return nil, fmt.Errorf("WordPress needs a mysql:// database, not %s", strings.SplitN(t.Database, "://", 2)[0])
		}
		pass, _ := u.User.Password()
		host := u.Host
		if sock := u.Query().Get("socket"); sock != "" {
			host = "localhost:" + sock
		}
		values["DB_NAME"] = strings.Trim(u.Path, "/")
		values["DB_USER"] = u.User.Username()
		values["DB_PASSWORD"] = pass
		values["DB_HOST"] = host
	}
	if t.URL != "" {
		values["WP_HOME"] = strings.TrimRight(t.URL, "/")
		values["WP_SITEURL"] = strings.TrimRight(t.URL, "/")
	}
	var changes []Change
	out := defineRE.ReplaceAllStringFunc(src, func(m string) string {
		sub := defineRE.FindStringSubmatch(m)
		key := sub[2]
		v, ok := values[key]
		if !ok || phpString(sub[3]) == v {
			return m
		}
		shown := v
		if key == "DB_PASSWORD" {
			shown = "(hidden)"
		}
		changes = append(changes, Change{File: "wp-config.php", Key: key, Value: shown})
		return strings.Replace(m, sub[3], phpQuote(v), 1)
	})
	if dryRun || out == src {
		return changes, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	tmp := path + ".cairn-tmp"
	if err := os.WriteFile(tmp, []byte(out), st.Mode().Perm()); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return changes, nil
}

// phpQuote writes s as a single-quoted PHP literal.
func phpQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
