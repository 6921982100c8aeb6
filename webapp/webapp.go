// Package webapp recognises web applications in a file tree (WordPress,
// Drupal, Laravel, Elgg), reads their database settings from their own
// configuration files, and records their versions (for WordPress also each
// plugin's and theme's). It reads files only: no PHP is run.
package webapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
)

// App is what was found in a tree.
type App struct {
	Name    string // wordpress, drupal, laravel, elgg
	Version string // "" when unknown
	// Databases are DSNs (mysql://, postgres://, sqlite:///…) with passwords.
	Databases []string
	// Components are plugins and themes: "plugin/akismet" → "5.3".
	Components map[string]string
	// Config is the file the settings came from, relative to the tree.
	Config string
	// TablePrefix is WordPress's $table_prefix ("wp_" by default).
	TablePrefix string
}

// ErrUnknown means no known application was found.
var ErrUnknown = errors.New("no WordPress, Drupal, Laravel or Elgg found")

// Detect looks at dir and returns the application in it.
func Detect(dir string) (*App, error) { return detect(localDir(dir)) }

// DetectTree looks at the tree t (on another host, say) and returns the
// application in it. Its configuration files are read only where they
// are no links: a tree on another host has its links left alone.
func DetectTree(ctx context.Context, t cairn.Tree) (*App, error) {
	return detect(remoteTree{ctx, t})
}

func detect(dir source) (*App, error) {
	detectors := []struct {
		marker string
		read   func(dir source) (*App, error)
	}{
		{"wp-config.php", wordpress},
		{"elgg-config/settings.php", elgg},
		{"artisan", laravel},
		{"sites/default/settings.php", drupal},
		{"web/sites/default/settings.php", func(d source) (*App, error) { return drupalIn(d, "web") }},
	}
	for _, d := range detectors {
		if dir.isFile(d.marker) {
			return d.read(dir)
		}
	}
	return nil, fmt.Errorf("%s: %w", dir, ErrUnknown)
}

// dsn builds a database URL from settings.
func dsn(scheme, user, password, host string, port int, name string) string {
	u := url.URL{Scheme: scheme, Path: "/" + name}
	if user != "" {
		if password != "" {
			u.User = url.UserPassword(user, password)
		} else {
			u.User = url.User(user)
		}
	}
	if strings.HasPrefix(host, "/") { // a socket path
		u.RawQuery = "socket=" + url.QueryEscape(host)
		return u.String()
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		host = h
		if n, err := strconv.Atoi(p); err == nil {
			port = n
		}
	} else if h, sock, ok := strings.Cut(host, ":"); ok && strings.HasPrefix(sock, "/") {
		host = h
		u.RawQuery = "socket=" + url.QueryEscape(sock)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	if port > 0 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	u.Host = host
	return u.String()
}

// headerVersion reads "Version: x" from a plugin or theme file's header
// comment (the first 8 KiB, as WordPress does).
func headerVersion(dir source, rel string) string {
	b, err := dir.read(rel, 8192)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "*#/ \t"))
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Version") {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "*/"))
		}
	}
	return ""
}
