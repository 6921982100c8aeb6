package webapp

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
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

// Configure points the copy of an application in tree (a restore's
// target) to its own database and URL. WordPress: DB_NAME, DB_USER, DB_PASSWORD and DB_HOST in
// wp-config.php, and WP_HOME and WP_SITEURL where the file defines them.
// Laravel: DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME, DB_PASSWORD and
// APP_URL in .env, where set. Elgg and Drupal: their settings.php. The
// file is read and rewritten through tree, atomically, its mode kept;
// everything else in it stays as it was. A link in its place is an error:
// it is not followed. keep tells which files the
// target keeps as its own (they are left alone). Other applications are
// not configured yet (ErrUnknown).
func Configure(ctx context.Context, tree files.Target, t Target, keep func(file string) bool, dryRun bool) ([]Change, error) {
	has := func(rel string) bool { _, err := tree.Lstat(ctx, rel); return err == nil }
	switch {
	case has("wp-config.php"):
		if keep("wp-config.php") {
			return nil, nil
		}
		return configureWordPress(ctx, tree, t, dryRun)
	case has("artisan"):
		if keep(".env") {
			return nil, nil
		}
		return configureLaravel(ctx, tree, t, dryRun)
	case has("elgg-config/settings.php"):
		if keep("elgg-config/settings.php") {
			return nil, nil
		}
		return configureElgg(ctx, tree, t, dryRun)
	}
	for _, rel := range []string{"sites/default/settings.php", "web/sites/default/settings.php"} {
		if has(rel) {
			if keep(rel) {
				return nil, nil
			}
			return configureDrupal(ctx, tree, rel, t, dryRun)
		}
	}
	return nil, fmt.Errorf("%s: %w", tree, ErrUnknown)
}

// splitDSN parses a DSN, its user and password taken out first: a
// password may be no URL's.
func splitDSN(dsn string) (cairn.DSN, *url.URL, error) {
	d, err := cairn.SplitDSN(dsn)
	if err != nil {
		return d, nil, err
	}
	u, err := url.Parse(d.Rest)
	if err != nil {
		return d, nil, fmt.Errorf("bad database DSN %s", cairn.RedactDSN(dsn))
	}
	return d, u, nil
}

// dbSettings splits a DSN into the parts applications configure.
func dbSettings(dsn string) (user, pass, host, port, name string, err error) {
	d, err := cairn.SplitDSN(dsn)
	if err != nil {
		return "", "", "", "", "", err
	}
	u, err := url.Parse(d.Rest)
	if err != nil || u.Scheme == "" {
		return "", "", "", "", "", fmt.Errorf("bad database DSN %s", cairn.RedactDSN(dsn))
	}
	return d.User, d.Password.Reveal(), u.Hostname(), u.Port(), strings.Trim(u.Path, "/"), nil
}

// setLiterals replaces the PHP literals re finds (key in group keyAt,
// literal in group valAt) within src[from:to] by values, keeping
// everything else, and reports what changed.
func setLiterals(src string, from, to int, re *regexp.Regexp, keyAt, valAt int, values map[string]string, file string) (string, []Change) {
	var changes []Change
	region := re.ReplaceAllStringFunc(src[from:to], func(m string) string {
		sub := re.FindStringSubmatch(m)
		key, lit := sub[keyAt], sub[valAt]
		v, ok := values[key]
		if !ok || v == "" && strings.Contains(key, "port") || phpString(lit) == v {
			return m
		}
		if lit[0] != '\'' && lit[0] != '"' { // a number: keep it one
			if _, err := strconv.Atoi(v); err != nil {
				return m
			}
			changes = append(changes, Change{File: file, Key: key, Value: v})
			return strings.Replace(m, lit, v, 1)
		}
		shown := v
		if strings.Contains(key, "pass") {
			shown = "(hidden)"
		}
		changes = append(changes, Change{File: file, Key: key, Value: shown})
		return strings.Replace(m, lit, phpQuote(v), 1)
	})
	return src[:from] + region + src[to:], changes
}

// configureElgg sets $CONFIG->db* and wwwroot in elgg-config/settings.php.
func configureElgg(ctx context.Context, tree files.Target, t Target, dryRun bool) ([]Change, error) {
	rel := "elgg-config/settings.php"
	b, err := files.ReadFile(ctx, tree, rel)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	if t.Database != "" {
		user, pass, host, port, name, err := dbSettings(t.Database)
		if err != nil {
			return nil, err
		}
		values["dbuser"], values["dbpass"], values["dbhost"], values["dbport"], values["dbname"] = user, pass, host, port, name
	}
	if t.URL != "" {
		values["wwwroot"] = strings.TrimRight(t.URL, "/") + "/"
	}
	src := string(b)
	out, changes := setLiterals(src, 0, len(src), propRE, 1, 2, values, rel)
	if dryRun || out == src {
		return changes, nil
	}
	return changes, files.ReplaceFile(ctx, tree, rel, []byte(out), 0o644)
}

// configureDrupal sets $databases['default']['default'] in settings.php.
func configureDrupal(ctx context.Context, tree files.Target, rel string, t Target, dryRun bool) ([]Change, error) {
	b, err := files.ReadFile(ctx, tree, rel)
	if err != nil {
		return nil, err
	}
	src := string(b)
	start := strings.Index(src, "$databases['default']['default']")
	if start < 0 {
		start = strings.Index(src, `$databases["default"]["default"]`)
	}
	if start < 0 || t.Database == "" {
		return nil, nil
	}
	end := strings.Index(src[start:], ";")
	if end < 0 {
		return nil, fmt.Errorf("%s: $databases['default']['default'] does not end", rel)
	}
	user, pass, host, port, name, err := dbSettings(t.Database)
	if err != nil {
		return nil, err
	}
	values := map[string]string{"username": user, "password": pass, "host": host, "port": port, "database": name}
	out, changes := setLiterals(src, start, start+end, keyRE, 1, 2, values, rel)
	if dryRun || out == src {
		return changes, nil
	}
	return changes, files.ReplaceFile(ctx, tree, rel, []byte(out), 0o644)
}

func configureWordPress(ctx context.Context, tree files.Target, t Target, dryRun bool) ([]Change, error) {
	rel := "wp-config.php"
	b, err := files.ReadFile(ctx, tree, rel)
	if err != nil {
		return nil, err
	}
	src := string(b)
	values := map[string]string{}
	if t.Database != "" {
		d, u, err := splitDSN(t.Database)
		if err != nil || (u.Scheme != "mysql" && u.Scheme != "mariadb") {
			scheme, _, _ := strings.Cut(t.Database, "://")
			return nil, fmt.Errorf("WordPress needs a mysql:// database, not %s", scheme)
		}
		host := u.Host // as the web server sees it (an ssh= option says how cairn reaches it)
		if sock := u.Query().Get("socket"); sock != "" {
			host = "localhost:" + sock
		}
		values["DB_NAME"] = strings.Trim(u.Path, "/")
		values["DB_USER"] = d.User
		values["DB_PASSWORD"] = d.Password.Reveal()
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
	return changes, files.ReplaceFile(ctx, tree, rel, []byte(out), 0o644)
}

// configureLaravel sets the .env keys that are already there.
func configureLaravel(ctx context.Context, tree files.Target, t Target, dryRun bool) ([]Change, error) {
	rel := ".env"
	b, err := files.ReadFile(ctx, tree, rel)
	if err != nil {
		return nil, fmt.Errorf("laravel: %w", err)
	}
	values := map[string]string{}
	if t.Database != "" {
		d, u, err := splitDSN(t.Database)
		if err != nil {
			return nil, fmt.Errorf("laravel: bad database DSN")
		}
		switch u.Scheme {
		case "mysql", "mariadb", "postgres", "postgresql":
			values["DB_HOST"], values["DB_PORT"] = u.Hostname(), u.Port()
			values["DB_DATABASE"] = strings.Trim(u.Path, "/")
			values["DB_USERNAME"], values["DB_PASSWORD"] = d.User, d.Password.Reveal()
		case "sqlite":
			values["DB_DATABASE"] = u.Host + u.Path
		}
	}
	if t.URL != "" {
		values["APP_URL"] = strings.TrimRight(t.URL, "/")
	}
	var changes []Change
	lines := strings.SplitAfter(string(b), "\n")
	for i, line := range lines {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		want, set := values[strings.TrimSpace(k)]
		if !ok || !set || want == "" && strings.TrimSpace(k) == "DB_PORT" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if unquoteEnv(strings.TrimSpace(v)) == want {
			continue
		}
		shown := want
		if strings.TrimSpace(k) == "DB_PASSWORD" {
			shown = "(hidden)"
		}
		changes = append(changes, Change{File: ".env", Key: strings.TrimSpace(k), Value: shown})
		nl := ""
		if strings.HasSuffix(line, "\n") {
			nl = "\n"
		}
		lines[i] = strings.TrimSpace(k) + "=" + quoteEnv(want) + nl
	}
	if dryRun || len(changes) == 0 {
		return changes, nil
	}
	return changes, files.ReplaceFile(ctx, tree, rel, []byte(strings.Join(lines, "")), 0o644)
}

func unquoteEnv(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// quoteEnv quotes a value when it needs it.
func quoteEnv(v string) string {
	if v != "" && !strings.ContainsAny(v, " #\"'\\$") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`).Replace(v) + `"`
}

// phpQuote writes s as a single-quoted PHP literal.
func phpQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
