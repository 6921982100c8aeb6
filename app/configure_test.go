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
	changes, err := Configure(dir, Target{URL: "https://staging.example.com/", Database: "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage"}, false)
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
	if again, _ := Configure(dir, Target{URL: "https://staging.example.com", Database: "mysql://stage:p%27w%5C@127.0.0.1:3307/wp_stage"}, false); len(again) != 0 {
		t.Errorf("second run changed %+v", again)
	}
}
