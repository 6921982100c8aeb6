package webapp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/postgres"
)

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWordPress(t *testing.T) {
	dir := tree(t, map[string]string{
		"wp-config.php": `<?php
// define('DB_NAME', 'commented_out');
/* define( 'DB_USER', 'old' ); */
define( 'DB_NAME', 'wordpress' );
define("DB_USER", "wp_user");
define( 'DB_PASSWORD', 'p@ss:w/o\'rd#1' );
define( 'DB_HOST', 'localhost:3307' );
$table_prefix = 'wp_';`,
		"wp-includes/version.php":                      "<?php\n$wp_version = '6.4.2';\n$wp_db_version = 56657;",
		"wp-content/plugins/akismet/akismet.php":       "<?php\n/*\nPlugin Name: Akismet\nVersion: 5.3\n*/",
		"wp-content/plugins/akismet/readme.txt":        "Stable tag: 5.3",
		"wp-content/plugins/hello.php":                 "<?php\n/**\n * Plugin Name: Hello Dolly\n * Version: 1.7.2\n */",
		"wp-content/plugins/index.php":                 "<?php // Silence is golden.",
		"wp-content/themes/twentytwentyfour/style.css": "/*\nTheme Name: Twenty Twenty-Four\nVersion: 1.0\n*/",
	})
	a, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "wordpress" || a.Version != "6.4.2" || a.Config != "wp-config.php" {
		t.Errorf("app = %+v", a)
	}
	c, err := mysql.ParseDSN(a.Databases[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "wordpress" || c.User != "wp_user" || c.Password.Reveal() != `p@ss:w/o'rd#1` || c.Host != "127.0.0.1" || c.Port != 3307 {
		t.Errorf("database = %+v (password %q)", c, c.Password.Reveal())
	}
	want := map[string]string{"plugin/akismet": "5.3", "plugin/hello": "1.7.2", "theme/twentytwentyfour": "1.0"}
	if len(a.Components) != len(want) {
		t.Errorf("components = %v, want %v", a.Components, want)
	}
	for k, v := range want {
		if a.Components[k] != v {
			t.Errorf("component %s = %q, want %q", k, a.Components[k], v)
		}
	}
}

func TestSampleSite(t *testing.T) {
	a, err := Detect("../examples/blog")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "wordpress" || a.Databases[0] != "mysql://wp:not-a-real-password@127.0.0.1/wordpress" ||
		a.Components["plugin/hello"] != "0.3.1" || a.Components["theme/cairn-demo"] != "1.0.0" {
		t.Errorf("sample site = %+v", a)
	}
}

func TestLaravel(t *testing.T) {
	tests := []struct {
		env, scheme, password string
	}{
		{"DB_CONNECTION=mysql\nDB_HOST=db\nDB_PORT=3306\nDB_DATABASE=shop\nDB_USERNAME=shop\nDB_PASSWORD=\"se cret#x\\\"y\"\n", "mysql", `se cret#x"y`},
		{"DB_CONNECTION=pgsql\nDB_HOST=127.0.0.1\nDB_PORT=5433\nDB_DATABASE=shop\nDB_USERNAME=shop\nDB_PASSWORD=plain # comment\n", "postgres", "plain"},
	}
	for _, tt := range tests {
		dir := tree(t, map[string]string{"artisan": "#!/usr/bin/env php", ".env": "APP_URL=https://shop.example\n" + tt.env,
			"composer.lock": `{"packages": [{"name": "laravel/framework", "version": "v11.9.2"}]}`})
		a, err := Detect(dir)
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != "laravel" || a.Version != "11.9.2" {
			t.Errorf("app = %+v", a)
		}
		var password, db string
		if tt.scheme == "mysql" {
			c, err := mysql.ParseDSN(a.Databases[0])
			if err != nil {
				t.Fatal(err)
			}
			password, db = c.Password.Reveal(), c.Database
		} else {
			c, err := postgres.ParseDSN(a.Databases[0])
			if err != nil {
				t.Fatal(err)
			}
			password, db = c.Password.Reveal(), c.Database
			if c.Port != 5433 {
				t.Errorf("port = %d", c.Port)
			}
		}
		if password != tt.password || db != "shop" {
			t.Errorf("%s: password %q db %q, want %q shop", tt.scheme, password, db, tt.password)
		}
	}
	dir := tree(t, map[string]string{"artisan": "", ".env": "DB_CONNECTION=sqlite\n"})
	a, err := Detect(dir)
	if err != nil || a.Databases[0] != "sqlite://"+filepath.Join(dir, "database/database.sqlite") {
		t.Errorf("sqlite laravel = %+v, %v", a, err)
	}
}

func TestDrupal(t *testing.T) {
	long := `<?php
$databases = [];
// $databases['default']['default'] = ['database' => 'old'];
$databases['default']['default'] = array (
  'database' => 'drupal',
  'username' => 'drupal',
  'password' => 'd\'rupal',
  'prefix' => '',
  'host' => 'db.internal',
  'port' => '3306',
  'namespace' => 'Drupal\\mysql\\Driver\\Database\\mysql',
  'driver' => 'mysql',
);
$settings['hash_salt'] = 'x';`
	short := `<?php
$databases['default']['default'] = [
  'database' => 'site', 'username' => 'u', 'password' => 'p', 'host' => 'pg', 'port' => 5432, 'driver' => 'pgsql',
];`
	a, err := Detect(tree(t, map[string]string{"sites/default/settings.php": long, "core/lib/Drupal.php": "<?php class Drupal { const VERSION = '10.2.5'; }"}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := mysql.ParseDSN(a.Databases[0])
	if a.Name != "drupal" || a.Version != "10.2.5" || c.Database != "drupal" || c.Password.Reveal() != "d'rupal" || c.Host != "db.internal" {
		t.Errorf("drupal = %+v, db %+v", a, c)
	}
	a, err = Detect(tree(t, map[string]string{"web/sites/default/settings.php": short}))
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := postgres.ParseDSN(a.Databases[0])
	if pc.Database != "site" || pc.Host != "pg" || pc.Port != 5432 || a.Config != "web/sites/default/settings.php" {
		t.Errorf("drupal (web/, pgsql) = %+v, db %+v", a, pc)
	}
}

func TestElgg(t *testing.T) {
	a, err := Detect(tree(t, map[string]string{"elgg-config/settings.php": `<?php
global $CONFIG;
$CONFIG->dbuser = 'elgg';
$CONFIG->dbpass = 'elgg pass';
$CONFIG->dbname = 'elgg';
$CONFIG->dbhost = 'localhost';
$CONFIG->dbport = 3306;
$CONFIG->dbprefix = 'elgg_';`}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := mysql.ParseDSN(a.Databases[0])
	if a.Name != "elgg" || c.Database != "elgg" || c.Password.Reveal() != "elgg pass" || c.Port != 3306 {
		t.Errorf("elgg = %+v, db %+v", a, c)
	}
}

func TestUnknownAndBroken(t *testing.T) {
	if _, err := Detect(tree(t, map[string]string{"index.html": "<h1>hi</h1>"})); !errors.Is(err, ErrUnknown) {
		t.Errorf("plain directory: %v", err)
	}
	if _, err := Detect(tree(t, map[string]string{"wp-config.php": "<?php require 'elsewhere.php';"})); err == nil {
		t.Error("a wp-config.php without DB_NAME gave no error")
	}
}

func FuzzPHP(f *testing.F) {
	f.Add(`define('DB_NAME', 'x\'y'); // c` + "\n/* d */ $a = \"b\\\"c\";")
	f.Add(`'unterminated`)
	f.Fuzz(func(t *testing.T, src string) {
		defines(src)
		assigns(src)
		phpString(src)
	})
}
