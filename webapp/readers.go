package webapp

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// wordpress reads wp-config.php, wp-includes/version.php and the plugin
// and theme headers.
func wordpress(dir source) (*App, error) {
	src, err := readFile(dir, "wp-config.php")
	if err != nil {
		return nil, err
	}
	d := defines(src)
	if d["DB_NAME"] == "" {
		return nil, fmt.Errorf("wp-config.php defines no DB_NAME. Try: --no-db, or name the database in cairn.yaml")
	}
	a := &App{Name: "wordpress", Config: "wp-config.php", Components: map[string]string{}, TablePrefix: "wp_",
		Databases: []string{dsn("mysql", d["DB_USER"], d["DB_PASSWORD"], d["DB_HOST"], 0, d["DB_NAME"])}}
	if p := assigns(src)["table_prefix"]; p != "" {
		a.TablePrefix = p
	}
	if v, err := readFile(dir, "wp-includes/version.php"); err == nil {
		a.Version = assigns(v)["wp_version"]
	}
	const plugins, themes = "wp-content/plugins", "wp-content/themes"
	for _, name := range dir.dirs(plugins) {
		for _, f := range phpFiles(dir, join(plugins, name)) {
			if isPluginFile(dir, f) {
				a.Components["plugin/"+name] = headerVersion(dir, f)
				break
			}
		}
	}
	for _, f := range phpFiles(dir, plugins) {
		if isPluginFile(dir, f) {
			a.Components["plugin/"+strings.TrimSuffix(path.Base(f), ".php")] = headerVersion(dir, f)
		}
	}
	for _, name := range dir.dirs(themes) {
		if style := join(themes, name, "style.css"); dir.isFile(style) {
			a.Components["theme/"+name] = headerVersion(dir, style)
		}
	}
	return a, nil
}

// phpFiles lists the .php files of the directory rel, sorted.
func phpFiles(dir source, rel string) []string {
	var out []string
	for _, f := range dir.files(rel) {
		if strings.HasSuffix(f, ".php") {
			out = append(out, join(rel, f))
		}
	}
	return out
}

func isPluginFile(dir source, rel string) bool {
	b, err := dir.read(rel, 8192)
	return err == nil && strings.Contains(string(b), "Plugin Name:")
}

// laravel reads .env and the framework's version from composer.lock.
func laravel(dir source) (*App, error) {
	env, err := dotenv(dir, ".env")
	if err != nil {
		return nil, fmt.Errorf("laravel: %w. Try: --no-db, or name the database in cairn.yaml", err)
	}
	a := &App{Name: "laravel", Config: ".env"}
	port, _ := strconv.Atoi(env["DB_PORT"])
	switch env["DB_CONNECTION"] {
	case "mysql", "mariadb":
		a.Databases = []string{dsn("mysql", env["DB_USERNAME"], env["DB_PASSWORD"], env["DB_HOST"], port, env["DB_DATABASE"])}
	case "pgsql":
		a.Databases = []string{dsn("postgres", env["DB_USERNAME"], env["DB_PASSWORD"], env["DB_HOST"], port, env["DB_DATABASE"])}
	case "sqlite":
		p := env["DB_DATABASE"]
		if p == "" {
			p = "database/database.sqlite"
		}
		if !filepath.IsAbs(p) {
			if p = dir.local(p); p == "" {
				return nil, fmt.Errorf("laravel: a SQLite database on another host cannot be dumped. Try: --no-db")
			}
		}
		a.Databases = []string{"sqlite://" + p}
	case "":
		return nil, fmt.Errorf("laravel: .env sets no DB_CONNECTION. Try: --no-db, or name the database in cairn.yaml")
	default:
		return nil, fmt.Errorf("laravel: DB_CONNECTION=%s is not supported (mysql, mariadb, pgsql, sqlite are)", env["DB_CONNECTION"])
	}
	if lock, err := readFile(dir, "composer.lock"); err == nil {
		a.Version = composerVersion(lock, "laravel/framework")
	}
	return a, nil
}

// dotenv reads KEY=value lines, with optional quotes.
func dotenv(dir source, rel string) (map[string]string, error) {
	b, err := dir.read(rel, maxConfig)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\n`, "\n").Replace(v[1 : len(v)-1])
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		default:
			if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}

// composerVersion finds a package's version in composer.lock.
func composerVersion(lock, pkg string) string {
	i := strings.Index(lock, `"name": "`+pkg+`"`)
	if i < 0 {
		return ""
	}
	rest := lock[i:]
	j := strings.Index(rest, `"version": "`)
	if j < 0 {
		return ""
	}
	v := rest[j+len(`"version": "`):]
	if k := strings.IndexByte(v, '"'); k >= 0 {
		return strings.TrimPrefix(v[:k], "v")
	}
	return ""
}

func drupal(dir source) (*App, error) { return drupalIn(dir, "") }

// drupalIn reads sites/default/settings.php ($databases['default']['default']).
func drupalIn(dir source, docroot string) (*App, error) {
	rel := join(docroot, "sites", "default", "settings.php")
	src, err := readFile(dir, rel)
	if err != nil {
		return nil, err
	}
	src = stripComments(src)
	i := strings.Index(src, "$databases['default']['default']")
	if i < 0 {
		i = strings.Index(src, `$databases["default"]["default"]`)
	}
	if i < 0 {
		return nil, fmt.Errorf("drupal: %s has no $databases['default']['default']. Try: --no-db, or name the database in cairn.yaml", rel)
	}
	block := src[i:]
	if end := strings.Index(block, ";"); end >= 0 {
		block = block[:end]
	}
	kv := map[string]string{}
	for _, m := range keyRE.FindAllStringSubmatch(block, -1) {
		kv[m[1]] = phpString(m[2])
	}
	port, _ := strconv.Atoi(kv["port"])
	a := &App{Name: "drupal", Config: rel}
	switch kv["driver"] {
	case "mysql", "":
		a.Databases = []string{dsn("mysql", kv["username"], kv["password"], kv["host"], port, kv["database"])}
	case "pgsql":
		a.Databases = []string{dsn("postgres", kv["username"], kv["password"], kv["host"], port, kv["database"])}
	case "sqlite":
		p := kv["database"]
		if !filepath.IsAbs(p) {
			if p = dir.local(join(docroot, p)); p == "" {
				return nil, fmt.Errorf("drupal: a SQLite database on another host cannot be dumped. Try: --no-db")
			}
		}
		a.Databases = []string{"sqlite://" + p}
	default:
		return nil, fmt.Errorf("drupal: database driver %q is not supported", kv["driver"])
	}
	if lock, err := readFile(dir, "composer.lock"); err == nil {
		a.Version = composerVersion(lock, "drupal/core")
	}
	if a.Version == "" {
		if v, err := readFile(dir, join(docroot, "core/lib/Drupal.php")); err == nil {
			if m := strings.Index(v, "const VERSION = '"); m >= 0 {
				rest := v[m+len("const VERSION = '"):]
				a.Version = rest[:strings.IndexByte(rest, '\'')]
			}
		}
	}
	return a, nil
}

// elgg reads elgg-config/settings.php ($CONFIG->dbuser and friends).
func elgg(dir source) (*App, error) {
	src, err := readFile(dir, "elgg-config/settings.php")
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for _, m := range propRE.FindAllStringSubmatch(stripComments(src), -1) {
		kv[m[1]] = phpString(m[2])
	}
	if kv["dbname"] == "" {
		return nil, fmt.Errorf("elgg: elgg-config/settings.php sets no $CONFIG->dbname. Try: --no-db, or name the database in cairn.yaml")
	}
	port, _ := strconv.Atoi(kv["dbport"])
	a := &App{Name: "elgg", Config: "elgg-config/settings.php",
		Databases: []string{dsn("mysql", kv["dbuser"], kv["dbpass"], kv["dbhost"], port, kv["dbname"])}}
	if lock, err := readFile(dir, "composer.lock"); err == nil {
		a.Version = composerVersion(lock, "elgg/elgg")
	}
	return a, nil
}
