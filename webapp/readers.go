package webapp

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn/files"
)

func readFile(dir, rel string) (string, error) {
	b, err := files.ReadRegular(filepath.Join(dir, rel))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", rel, err)
	}
	return string(b), nil
}

// wordpress reads wp-config.php, wp-includes/version.php and the plugin
// and theme headers.
func wordpress(dir string) (*App, error) {
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
	plugins := filepath.Join(dir, "wp-content", "plugins")
	for _, e := range sortedDirs(plugins) {
		files, _ := filepath.Glob(filepath.Join(plugins, e.Name(), "*.php"))
		for _, f := range files {
			if isPluginFile(f) {
				a.Components["plugin/"+e.Name()] = headerVersion(f)
				break
			}
		}
	}
	if single, _ := filepath.Glob(filepath.Join(plugins, "*.php")); single != nil {
		for _, f := range single {
			if isPluginFile(f) {
				a.Components["plugin/"+strings.TrimSuffix(filepath.Base(f), ".php")] = headerVersion(f)
			}
		}
	}
	themes := filepath.Join(dir, "wp-content", "themes")
	for _, e := range sortedDirs(themes) {
		if style := filepath.Join(themes, e.Name(), "style.css"); fileExists(style) {
			a.Components["theme/"+e.Name()] = headerVersion(style)
		}
	}
	return a, nil
}

func isPluginFile(path string) bool {
	b := make([]byte, 8192)
	f, err := files.OpenRegular(path)
	if err != nil {
		return false
	}
	defer f.Close()
	n, _ := f.Read(b)
	return strings.Contains(string(b[:n]), "Plugin Name:")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// laravel reads .env and the framework's version from composer.lock.
func laravel(dir string) (*App, error) {
	env, err := dotenv(filepath.Join(dir, ".env"))
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
			p = filepath.Join(dir, p)
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
func dotenv(path string) (map[string]string, error) {
	f, err := files.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
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

func drupal(dir string) (*App, error) { return drupalIn(dir, "") }

// drupalIn reads sites/default/settings.php ($databases['default']['default']).
func drupalIn(dir, docroot string) (*App, error) {
	rel := filepath.Join(docroot, "sites", "default", "settings.php")
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
		a.Databases = []string{"sqlite://" + filepath.Join(dir, docroot, kv["database"])}
	default:
		return nil, fmt.Errorf("drupal: database driver %q is not supported", kv["driver"])
	}
	if lock, err := readFile(dir, "composer.lock"); err == nil {
		a.Version = composerVersion(lock, "drupal/core")
	}
	if a.Version == "" {
		if v, err := readFile(dir, filepath.Join(docroot, "core", "lib", "Drupal.php")); err == nil {
			if m := strings.Index(v, "const VERSION = '"); m >= 0 {
				rest := v[m+len("const VERSION = '"):]
				a.Version = rest[:strings.IndexByte(rest, '\'')]
			}
		}
	}
	return a, nil
}

// elgg reads elgg-config/settings.php ($CONFIG->dbuser and friends).
func elgg(dir string) (*App, error) {
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
