package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cairn-backup/cairn/mysql"
)

// A real WordPress for the clone tests: Debian's wordpress package,
// unpacked by the test command ($CAIRN_WORDPRESS), served by PHP's
// built-in server on loopback.

// phpServe serves dir with `php -S` on a free loopback port until the
// script ends and returns its URL.
func phpServe(ts *testscript.TestScript, dir string) string {
	php, err := exec.LookPath("php")
	if err != nil {
		ts.Fatalf("php is required: %v. Run ./scripts/test, which installs it", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(php, "-S", addr, "-t", dir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	ts.Check(cmd.Start())
	ts.Defer(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("php -S did not start on %s", addr)
	return ""
}

// wpserve DIR VAR: serve DIR with PHP; VAR is its URL.
func cmdWPServe(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Setenv(args[1], phpServe(ts, dir))
}

// wordpress DIR ROOTDSN VAR: install WordPress into DIR on the (empty)
// database, serve it, set VAR to its URL, and give it content that holds
// its URL: a post with a link, a serialized widget, a JSON block.
func cmdWordPress(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: wordpress DIR ROOTDSN VAR")
	}
	src := os.Getenv("CAIRN_WORDPRESS")
	if src == "" {
		src = filepath.Join(os.Getenv("HOME"), ".cache", "cairn-test", "wordpress", "usr", "share", "wordpress")
	}
	if _, err := os.Stat(filepath.Join(src, "wp-includes", "version.php")); err != nil {
		ts.Fatalf("WordPress is required (%v). Run ./scripts/test, which fetches Debian's wordpress package", err)
	}
	dir := ts.MkAbs(args[0])
	if out, err := exec.Command("cp", "-a", src+"/.", dir).CombinedOutput(); err != nil {
		ts.Fatalf("copy WordPress: %v: %s", err, out)
	}
	c, err := mysql.ParseDSN(args[1])
	ts.Check(err)
	config := fmt.Sprintf(`<?php
define( 'DB_NAME', '%s' );
define( 'DB_USER', '%s' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '%s:%d' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'AUTH_KEY', 'cairn-test-key' );
define( 'WP_DEBUG', false );
define( 'DISABLE_WP_CRON', true ); // no background writes racing the test's checks
$table_prefix = 'wp_';
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
`, c.Database, c.User, c.Host, c.Port)
	ts.Check(os.WriteFile(filepath.Join(dir, "wp-config.php"), []byte(config), 0o644))
	base := phpServe(ts, dir)
	form := url.Values{"weblog_title": {"cairn test"}, "user_name": {"admin"}, "admin_password": {"Correct-Horse-9"},
		"admin_password2": {"Correct-Horse-9"}, "pw_weak": {"1"}, "admin_email": {"admin@realcompany.com"}, "blog_public": {"1"}}
	resp, err := http.PostForm(base+"/wp-admin/install.php?step=2", form)
	ts.Check(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Success!") {
		ts.Fatalf("WordPress install failed: %.2000s", body)
	}
	// Content that holds the site's URL in the forms a real site has.
	link := base + "/hello-cairn/"
	widget := fmt.Sprintf(`a:2:{i:2;a:2:{s:5:"title";s:7:"Links ☕";s:4:"text";s:%d:"%s";}s:12:"_multiwidget";i:1;}`, len(`<a href="`+link+`">more</a>`), `<a href="`+link+`">more</a>`)
	root := mariaRoot(ts, c.Database)
	defer root.Close()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, guid, post_type) VALUES (1, NOW(), NOW(), ?, 'Hello cairn', '', 'publish', 'hello-cairn', '', '', NOW(), NOW(), '', ?, 'post')",
			[]any{`<!-- wp:paragraph --><p>Read <a href="` + link + `">this</a>.</p><!-- /wp:paragraph --><!-- wp:image {"url":"` + strings.ReplaceAll(base, "/", `\/`) + `\/img.png"} /-->`, base + "/?p=99"}},
		{"INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('widget_text', ?, 'yes') ON DUPLICATE KEY UPDATE option_value = VALUES(option_value)", []any{widget}},
		{"UPDATE wp_options SET option_value = '/%postname%/' WHERE option_name = 'permalink_structure'", nil},
	} {
		_, err := root.Exec(q.sql, q.args...)
		ts.Check(err)
	}
	ts.Setenv(args[2], base)
}

// fetch URL: GET it; the body goes to stdout.
func cmdFetch(ts *testscript.TestScript, neg bool, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	ts.Check(err)
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if (resp.StatusCode == 200) == neg {
		ts.Fatalf("GET %s: %s", args[0], resp.Status)
	}
	ts.Stdout().Write(body)
}

// wpoptions DIR: PHP loads the WordPress in DIR and unserializes every
// option that is_serialized(); any that fails is printed and fails.
func cmdWPOptions(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	script := `$_SERVER['HTTP_HOST'] = 'localhost'; require getenv('WP_DIR') . '/wp-load.php';
		$bad = 0; $n = 0;
		foreach ($wpdb->get_results("SELECT option_name, option_value FROM $wpdb->options") as $o) {
			if (!is_serialized($o->option_value)) continue;
			$n++;
			if ($o->option_value !== 'b:0;' && @unserialize($o->option_value) === false) { echo "broken: ", $o->option_name, "\n"; $bad++; }
		}
		echo "serialized options: $n, broken: $bad\n"; exit($bad > 0 ? 1 : 0);`
	cmd := exec.Command("php", "-r", script)
	cmd.Env = append(os.Environ(), "WP_DIR="+dir)
	out, err := cmd.CombinedOutput()
	ts.Stdout().Write(out)
	if (err != nil) != neg {
		ts.Fatalf("wpoptions: %v", err)
	}
}
