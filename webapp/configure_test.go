package webapp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigureWordPress(t *testing.T) {
	dir := tree(t, map[string]string{"wp-config.php": `<?php
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'old' );
define( 'DB_HOST', 'db1.example.com' );
define( 'WP_HOME', 'https://example.com' );
define( 'AUTH_KEY', 'keep me' );
$table_prefix = 'wp_';
`})
	os.Chmod(filepath.Join(dir, "wp-config.php"), 0o640)
	never := func(string) bool { return false }
	changes, err := Configure(context.Background(), local(t, dir), Target{URL: "https://staging.example.com/", Database: "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage"}, never, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 5 {
		t.Errorf("changes = %+v", changes)
	}
	a, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Databases[0] != "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage" {
		t.Errorf("database read back = %s", a.Databases[0])
	}
	b, _ := os.ReadFile(filepath.Join(dir, "wp-config.php"))
	src := string(b)
	if d := defines(src); d["WP_HOME"] != "https://staging.example.com" || d["AUTH_KEY"] != "keep me" || d["DB_PASSWORD"] != `p'w\` {
		t.Errorf("wp-config.php now:\n%s", src)
	}
	if _, ok := defines(src)["WP_SITEURL"]; ok {
		t.Error("WP_SITEURL was added; only defined settings change")
	}
	if st, _ := os.Stat(filepath.Join(dir, "wp-config.php")); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	if again, _ := Configure(context.Background(), local(t, dir), Target{URL: "https://staging.example.com", Database: "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage"}, never, false); len(again) != 0 {
		t.Errorf("second run changed %+v", again)
	}
}

func TestConfigureLaravel(t *testing.T) {
	dir := tree(t, map[string]string{"artisan": "#!/usr/bin/env php", ".env": "APP_NAME=Shop\nAPP_URL=https://shop.example.com\n# DB_HOST=commented\nDB_CONNECTION=mysql\nDB_HOST=db1\nDB_PORT=3306\nDB_DATABASE=shop\nDB_USERNAME=shop\nDB_PASSWORD=\"old secret\"\nMAIL_MAILER=smtp\n"})
	changes, err := Configure(context.Background(), local(t, dir), Target{URL: "http://localhost:8000", Database: "mysql://dev:new%20pw@127.0.0.1:3307/shop_dev"}, func(string) bool { return false }, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env"))
	want := "APP_NAME=Shop\nAPP_URL=http://localhost:8000\n# DB_HOST=commented\nDB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3307\nDB_DATABASE=shop_dev\nDB_USERNAME=dev\nDB_PASSWORD=\"new pw\"\nMAIL_MAILER=smtp\n"
	if string(b) != want || len(changes) != 6 {
		t.Errorf(".env now:\n%s\nchanges %+v", b, changes)
	}
	a, err := Detect(dir)
	if err != nil || a.Databases[0] != "mysql://dev:new%20pw@127.0.0.1:3307/shop_dev" {
		t.Errorf("read back: %+v, %v", a, err)
	}
	// A kept .env is left alone.
	if ch, _ := Configure(context.Background(), local(t, dir), Target{URL: "http://x"}, func(f string) bool { return f == ".env" }, false); len(ch) != 0 {
		t.Errorf("kept .env changed: %+v", ch)
	}
}

func TestConfigureElggDrupal(t *testing.T) {
	never := func(string) bool { return false }
	elggDir := tree(t, map[string]string{"elgg-config/settings.php": `<?php
$CONFIG = new \stdClass;
$CONFIG->dbuser = 'elgg';
$CONFIG->dbpass = 'old';
$CONFIG->dbname = 'elgg_prod';
$CONFIG->dbhost = 'db1';
$CONFIG->dbport = 3306;
$CONFIG->wwwroot = 'https://example.com/';
$CONFIG->dataroot = '/var/data/elgg/';
`})
	if _, err := Configure(context.Background(), local(t, elggDir), Target{URL: "https://staging.example.com", Database: "mysql://st:pw@127.0.0.1:3307/elgg_stage"}, never, false); err != nil {
		t.Fatal(err)
	}
	a, err := Detect(elggDir)
	if err != nil || a.Databases[0] != "mysql://st:pw@127.0.0.1:3307/elgg_stage" {
		t.Errorf("elgg read back: %+v, %v", a, err)
	}
	b, _ := os.ReadFile(filepath.Join(elggDir, "elgg-config", "settings.php"))
	if got := string(b); !strings.Contains(got, `$CONFIG->wwwroot = 'https://staging.example.com/';`) || !strings.Contains(got, `$CONFIG->dbport = 3307;`) || !strings.Contains(got, `dataroot = '/var/data/elgg/'`) {
		t.Errorf("elgg settings now:\n%s", got)
	}

	drupalDir := tree(t, map[string]string{"sites/default/settings.php": `<?php
$settings['hash_salt'] = 'keep';
$databases['default']['default'] = array (
  'database' => 'drupal',
  'username' => 'drupal',
  'password' => 'old',
  'host' => 'db1',
  'port' => '3306',
  'driver' => 'mysql',
  'prefix' => '',
);
$settings['file_private_path'] = 'private';
`})
	if _, err := Configure(context.Background(), local(t, drupalDir), Target{Database: "mysql://st:pw@127.0.0.1:3307/drupal_stage"}, never, false); err != nil {
		t.Fatal(err)
	}
	a, err = Detect(drupalDir)
	if err != nil || a.Databases[0] != "mysql://st:pw@127.0.0.1:3307/drupal_stage" {
		t.Errorf("drupal read back: %+v, %v", a, err)
	}
	b, _ = os.ReadFile(filepath.Join(drupalDir, "sites", "default", "settings.php"))
	if got := string(b); !strings.Contains(got, `'driver' => 'mysql'`) || !strings.Contains(got, `$settings['hash_salt'] = 'keep';`) {
		t.Errorf("drupal settings now:\n%s", got)
	}
}

// A configuration file that is a link (to production's shared config, say)
// is never written through: the copy's configure fails, the file the link
// leads to is untouched. So is one below a linked directory.
func TestConfigureNeverWritesThroughLinks(t *testing.T) {
	shared := tree(t, map[string]string{"wp-config.php": "<?php\ndefine( 'DB_NAME', 'production' );\ndefine( 'DB_HOST', 'db1' );\n", "sites/default/settings.php": "<?php\n$databases['default']['default'] = ['database' => 'production', 'host' => 'db1', 'driver' => 'mysql'];\n"})
	before := map[string]string{}
	for _, f := range []string{"wp-config.php", "sites/default/settings.php"} {
		b, _ := os.ReadFile(filepath.Join(shared, f))
		before[f] = string(b)
	}
	dir := t.TempDir()
	os.Symlink(filepath.Join(shared, "wp-config.php"), filepath.Join(dir, "wp-config.php"))
	never := func(string) bool { return false }
	if _, err := Configure(context.Background(), local(t, dir), Target{URL: "https://staging.example.com", Database: "mysql://stage:pw@127.0.0.1:3306/wp_stage"}, never, false); err == nil {
		t.Error("configure wrote a config file that is a link")
	}
	drupal := t.TempDir()
	os.Symlink(filepath.Join(shared, "sites"), filepath.Join(drupal, "sites"))
	os.WriteFile(filepath.Join(drupal, "index.php"), []byte("<?php // Drupal"), 0o644)
	os.MkdirAll(filepath.Join(drupal, "core/lib"), 0o755)
	os.WriteFile(filepath.Join(drupal, "core/lib/Drupal.php"), []byte("<?php const VERSION = '10.2.0';"), 0o644)
	Configure(context.Background(), local(t, drupal), Target{URL: "https://staging.example.com", Database: "mysql://stage:pw@127.0.0.1:3306/wp_stage"}, never, false) //nolint:errcheck
	for f, want := range before {
		if b, _ := os.ReadFile(filepath.Join(shared, f)); string(b) != want {
			t.Errorf("%s behind the link was changed:\n%s", f, b)
		}
	}
}
