// Package actions runs an environment's after_restore: list once a restore
// or a clone has put a copy in place: the chores that make a copy safe to
// use (no search engines, no mail, a visible banner, no real users) and
// the site's own (sql: statements, run: commands).
package actions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/shell"
	"github.com/cairn-backup/cairn/webapp"
)

// Action is one entry of after_restore (parsed by cairn.ParseActions).
type Action = cairn.Action

// Target is the copy the actions run on.
type Target struct {
	Name      string // SITE/ENV
	URL       string
	Dir       string // the files (on their host)
	Databases []cairn.Database
	DSNs      []cairn.DSN // the databases' DSNs, for run: (passwords included)
	// Tree, if set, is the files (on another host); else Dir is opened
	// on this machine.
	Tree files.Target
	// Shell, if set, runs a run: action's shell script on the files'
	// host (sh reading script on its stdin, so that nothing in it shows
	// in any process's arguments) and returns its output; else it runs
	// here.
	Shell func(ctx context.Context, script string) ([]byte, error)
}

// Run runs the actions in order and stops at the first failure, which
// names the action. done is called after each action that succeeded.
func Run(ctx context.Context, t Target, list []Action, done func(Action)) error {
	var wp *webapp.App
	detect := func() (*webapp.App, error) {
		if wp == nil {
			var a *webapp.App
			var err error
			if t.Tree != nil {
				a, err = webapp.DetectTree(ctx, t.Tree)
			} else {
				a, err = webapp.Detect(t.Dir)
			}
			if err != nil || a.Name != "wordpress" {
				return nil, fmt.Errorf("this action knows WordPress only, and %s holds no WordPress. Try: a \"sql:\" or \"run:\" action instead", t.Dir)
			}
			wp = a
		}
		return wp, nil
	}
	for _, a := range list {
		if err := run(ctx, t, a, detect); err != nil {
			return fmt.Errorf("after_restore %q on %s failed: %w. The restore itself is complete; fix the action and run it by hand, or restore again", a.String(), t.Name, err)
		}
		if done != nil {
			done(a)
		}
	}
	return nil
}

func run(ctx context.Context, t Target, a Action, wordpress func() (*webapp.App, error)) error {
	switch a.Kind {
	case "sql":
		if len(t.Databases) == 0 {
			return fmt.Errorf("%s has no databases", t.Name)
		}
		return t.Databases[0].Exec(ctx, a.Arg)
	case "run":
		if t.Shell != nil {
			return runRemote(ctx, t, a.Arg)
		}
		cmd := exec.CommandContext(ctx, "sh", "-c", a.Arg)
		cmd.Dir = t.Dir
		cmd.Env = append(os.Environ(), "CAIRN_ENVIRONMENT="+t.Name, "CAIRN_URL="+t.URL, "CAIRN_FILES="+t.Dir)
		for i, dsn := range t.DSNs {
			cmd.Env = append(cmd.Env, fmt.Sprintf("CAIRN_DATABASE_%d=%s", i+1, dsn.Reveal()))
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(tail(out)))
		}
		return nil
	}
	wp, err := wordpress()
	if err != nil {
		return err
	}
	switch a.Kind {
	case "noindex":
		return wpSQL(ctx, t, fmt.Sprintf("UPDATE `%soptions` SET option_value = '0' WHERE option_name = 'blog_public';", wp.TablePrefix))
	case "sanitize-users":
		secret := make([]byte, 16)
		rand.Read(secret) //nolint:errcheck
		p := wp.TablePrefix
		// An MD5 of a random secret: WordPress accepts the form, nobody
		// knows the password. Sessions live in usermeta.
		return wpSQL(ctx, t, fmt.Sprintf("UPDATE `%susers` SET user_email = CONCAT('user+', ID, '@example.invalid'), user_pass = MD5('%s'), user_activation_key = '';\n"+
			"DELETE FROM `%susermeta` WHERE meta_key = 'session_tokens';", p, hex.EncodeToString(secret), p))
	case "disable-mail":
		return muPlugin(ctx, t, "cairn-disable-mail.php", disableMail)
	case "banner":
		return muPlugin(ctx, t, "cairn-banner.php", strings.ReplaceAll(banner, "{{NAME}}", htmlEscape(t.Name)))
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

func wpSQL(ctx context.Context, t Target, sql string) error {
	if len(t.Databases) == 0 {
		return fmt.Errorf("%s has no databases", t.Name)
	}
	return t.Databases[0].Exec(ctx, sql)
}

// muPlugin writes a must-use plugin, which WordPress loads before any
// other and which cannot be switched off from the admin.
func muPlugin(ctx context.Context, t Target, name, src string) error {
	rel := "wp-content/mu-plugins/" + name
	if t.Tree != nil {
		return files.ReplaceFile(ctx, t.Tree, rel, []byte(src), 0o644)
	}
	return files.WriteFileIn(ctx, t.Dir, rel, []byte(src), 0o644)
}

// runRemote runs a run: action on the files' host: the variables a local
// one gets are exported by the script itself, read from stdin.
func runRemote(ctx context.Context, t Target, command string) error {
	var b strings.Builder
	export := func(k, v string) { fmt.Fprintf(&b, "export %s=%s\n", k, shell.Quote(v)) }
	export("CAIRN_ENVIRONMENT", t.Name)
	export("CAIRN_URL", t.URL)
	export("CAIRN_FILES", t.Dir)
	for i, dsn := range t.DSNs {
		export(fmt.Sprintf("CAIRN_DATABASE_%d", i+1), dsn.Reveal())
	}
	fmt.Fprintf(&b, "cd %s || exit 1\n%s\n", shell.Quote(t.Dir), command)
	if out, err := t.Shell(ctx, b.String()); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(tail(out)))
	}
	return nil
}

const disableMail = `<?php
/*
 * Plugin Name: cairn: no e-mail from this copy
 * Description: Added by cairn after a restore (after_restore: disable-mail). This copy is not production, so it sends no e-mail.
 */
if (!function_exists('wp_mail')) {
	function wp_mail($to, $subject, $message, $headers = '', $attachments = array()) {
		return false;
	}
}
add_filter('pre_wp_mail', '__return_false', PHP_INT_MAX);
`

const banner = `<?php
/*
 * Plugin Name: cairn: staging banner
 * Description: Added by cairn after a restore (after_restore: banner).
 */
function cairn_staging_banner() {
	echo '<div id="cairn-staging-banner" style="position:fixed;z-index:999999;bottom:0;left:0;right:0;background:#b00020;color:#fff;font:bold 14px/1.6 sans-serif;text-align:center;padding:4px">STAGING — not production ({{NAME}})</div>';
}
add_action('wp_footer', 'cairn_staging_banner');
add_action('admin_footer', 'cairn_staging_banner');
`

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&quot;").Replace(s)
}

func tail(b []byte) string {
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}
