package app

import (
	"os"
	"path/filepath"
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
	changes, err := Configure(dir, Target{URL: "https://staging.example.com/", Database: "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage"}, never, false)
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
	if again, _ := Configure(dir, Target{URL: "https://staging.example.com", Database: "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage"}, never, false); len(again) != 0 {
		t.Errorf("second run changed %+v", again)
	}
}

func TestConfigureLaravel(t *testing.T) {
	dir := tree(t, map[string]string{"artisan": "#!/usr/bin/env php", ".env": "APP_NAME=Shop\nAPP_URL=https://shop.example.com\n# DB_HOST=commented\nDB_CONNECTION=mysql\nDB_HOST=db1\nDB_PORT=3306\nDB_DATABASE=shop\nDB_USERNAME=shop\nDB_PASSWORD=\"old secret\"\nMAIL_MAILER=smtp\n"})
	changes, err := Configure(dir, Target{URL: "http://localhost:8000", Database: "mysql://dev:new%20pw@127.0.0.1:3307/shop_dev"}, func(string) bool { return false }, false)
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
	if ch, _ := Configure(dir, Target{URL: "http://x"}, func(f string) bool { return f == ".env" }, false); len(ch) != 0 {
		t.Errorf("kept .env changed: %+v", ch)
	}
}
