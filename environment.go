package cairn

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Environment is one running copy of a site (production, staging, …), as
// the configuration describes it, parsed once: nothing is re-parsed from
// names or strings where it is used.
type Environment struct {
	Site, Env string // the names: SITE/ENV
	URL       string // where it serves pages, "" if unknown
	// Files is where its files are: the first of Nodes, the one a
	// snapshot reads.
	Files Location
	// Nodes are every copy of the files, one per web node, when there
	// are several (files: [ssh://web1/…, ssh://web2/…]): a restore
	// writes them all, and a snapshot says when they differ.
	Nodes     []Location
	Databases []DSN // in order: a snapshot's database i restores onto the target's i
	// Exclude are gitignore-style patterns of paths never snapshotted nor
	// restored; Preserve those of the target's own paths a restore onto it
	// never touches.
	Exclude, Preserve []string
	AfterRestore      []Action  // run once a restore or clone has put a copy in place
	Settings          []Setting // set in the copy's own configuration files after a restore onto it
	// Replace are the site's own rewrites, applied with the URL's and the
	// files path's when its data moves between environments.
	Replace   []Replacement
	Protected bool // a restore onto it needs a typed confirmation
}

// Name is SITE/ENV.
func (e *Environment) Name() string { return e.Site + "/" + e.Env }

// Location is where a tree of files lives: a local directory, or one on
// another host reached over SSH (ssh://user@host:port/path).
type Location struct {
	// Path is the directory: absolute and clean (on its host, for a
	// remote one).
	Path string
	// User, Host and Port are those of a remote location; Host is "" for
	// a local directory.
	User, Host string
	Port       int
}

// ParseLocation reads a local path or an ssh:// URL. A relative local
// path is taken relative to base (the configuration file's directory).
func ParseLocation(s, base string) (Location, error) {
	if !strings.Contains(s, "://") {
		if s == "" {
			return Location{}, fmt.Errorf("%w: an empty path", ErrInvalidArgument)
		}
		if !filepath.IsAbs(s) {
			s = filepath.Join(base, s)
		}
		abs, err := filepath.Abs(s)
		if err != nil {
			return Location{}, err
		}
		return Location{Path: abs}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "ssh" || u.Hostname() == "" || !path.IsAbs(u.Path) {
		return Location{}, fmt.Errorf("%w: %q is not a local path nor ssh://[user@]host[:port]/absolute/path", ErrInvalidArgument, RedactDSN(s))
	}
	if _, hasPass := u.User.Password(); hasPass {
		return Location{}, fmt.Errorf("%w: %s: a password in an ssh:// location is never accepted. Try: an SSH key (ssh-agent or ~/.ssh)", ErrInvalidArgument, RedactDSN(s))
	}
	l := Location{Path: path.Clean(u.Path), User: u.User.Username(), Host: u.Hostname()}
	if p := u.Port(); p != "" {
		if l.Port, err = strconv.Atoi(p); err != nil || l.Port <= 0 || l.Port > 65535 {
			return Location{}, fmt.Errorf("%w: %s: port %q is not a number from 1 to 65535", ErrInvalidArgument, s, p)
		}
	}
	return l, nil
}

// Key names the files for locks and comparisons, whoever logs in to
// reach them: the path of a local directory, ssh://host:port/path for a
// remote one (port 22 when unsaid; the host as written, so an ssh_config
// alias and the name it stands for are two keys).
func (l Location) Key() string {
	if l.IsLocal() {
		return l.Path
	}
	port := l.Port
	if port == 0 {
		port = 22
	}
	return "ssh://" + strings.ToLower(l.Host) + ":" + strconv.Itoa(port) + l.Path
}

// IsLocal tells whether the files are on this machine.
func (l Location) IsLocal() bool { return l.Host == "" }

func (l Location) String() string {
	if l.IsLocal() {
		return l.Path
	}
	u := url.URL{Scheme: "ssh", Host: l.Host, Path: l.Path}
	if l.Port != 0 {
		u.Host += ":" + strconv.Itoa(l.Port)
	}
	if l.User != "" {
		u.User = url.User(l.User)
	}
	return u.String()
}

// Action is one entry of an environment's after_restore: a built-in chore
// that makes a copy safe to use, or the site's own SQL or command.
type Action struct {
	Kind string // noindex, disable-mail, banner, sanitize-users, sql, run
	Arg  string // the statement or command of sql: and run:
}

func (a Action) String() string {
	if a.Arg != "" {
		return a.Kind + ": " + a.Arg
	}
	return a.Kind
}

// Describe says what the action does, for plans.
func (a Action) Describe() string {
	switch a.Kind {
	case "sql":
		return "run SQL on the first database: " + a.Arg
	case "run":
		return "run in the files' directory: " + a.Arg
	}
	return builtinActions[a.Kind]
}

// WritesFiles tells whether the action puts files in the copy (and so is
// run on each of its web nodes).
func (a Action) WritesFiles() bool { return a.Kind == "disable-mail" || a.Kind == "banner" }

// Repeatable tells whether running the action again after a clone leaves
// the data as it was (the built-in chores do; a site's own SQL or command
// may not).
func (a Action) Repeatable() bool { return a.Kind != "sql" && a.Kind != "run" }

var builtinActions = map[string]string{
	"noindex":        "ask search engines not to index the copy (WordPress: blog_public = 0)",
	"disable-mail":   "stop the copy from sending e-mail (WordPress: a must-use plugin)",
	"banner":         "show a STAGING banner on every page (WordPress: a must-use plugin)",
	"sanitize-users": "give every user an address at example.invalid and an unknown password, end all sessions",
}

// ParseActions reads an after_restore: list.
func ParseActions(list []string) ([]Action, error) {
	var out []Action
	for _, s := range list {
		s = strings.TrimSpace(s)
		if kind, arg, ok := strings.Cut(s, ":"); ok && (kind == "sql" || kind == "run") {
			if strings.TrimSpace(arg) == "" {
				return nil, fmt.Errorf("%w: after_restore: %q has nothing after the colon", ErrInvalidArgument, s)
			}
			out = append(out, Action{Kind: kind, Arg: strings.TrimSpace(arg)})
			continue
		}
		if _, ok := builtinActions[s]; !ok {
			return nil, fmt.Errorf("%w: after_restore: unknown action %q. Try one of: noindex, disable-mail, banner, sanitize-users, \"sql: STATEMENT\", \"run: COMMAND\"", ErrInvalidArgument, s)
		}
		out = append(out, Action{Kind: s})
	}
	return out, nil
}

// Setting sets Key to Value in File (relative to the environment's
// files): a PHP define() or $variable, a .env line, an ini/conf or YAML
// top-level key.
type Setting struct {
	File, Key, Value string
}

// Replacement is one rewrite of a site's data: From becomes To.
type Replacement struct {
	From, To string
}
