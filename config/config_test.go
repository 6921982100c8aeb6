package config

import (
	"strings"
	"testing"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParse(t *testing.T) {
	src := `
repository:
  url: s3://backups/cairn?endpoint=http://127.0.0.1:9000
  password: ${CAIRN_PASSWORD}
sites:
  blog:
    environments:
      production:
        url: https://example.com
        files: /var/www/html
        databases: [mysql://backup:${DB_PASS}@db1:3306/wordpress]
        exclude: [wp-content/cache/]
        protected: true
      staging:
        files: ssh://${HOST}${ROOT}/staging
        preserve: [wp-content/uploads/]
    schedule: {snapshot: "0 */6 * * *", drill: "@weekly"}
    retention: {daily: 14, weekly: 8}
`
	cfg, err := Parse("cairn.yaml", []byte(src), lookup(map[string]string{"CAIRN_PASSWORD": "s3cret", "DB_PASS": "p@ss", "HOST": "web1", "ROOT": "/var/www"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Repository.Password.Reveal(); got != "s3cret" {
		t.Errorf("password = %q", got)
	}
	if stage, err := cfg.Env("blog", "staging"); err != nil || stage.Files.String() != "ssh://web1/var/www/staging" {
		t.Errorf("two variables side by side: staging = %+v, %v", stage, err)
	}
	prod, err := cfg.Env("blog", "production")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Name() != "blog/production" || !prod.Protected || prod.Databases[0].Reveal() != "mysql://backup:p@ss@db1:3306/wordpress" || prod.Exclude[0] != "wp-content/cache/" {
		t.Errorf("production = %+v", prod)
	}
	if cfg.Sites["blog"].Retention["daily"] != 14 {
		t.Errorf("retention = %v", cfg.Sites["blog"].Retention)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"repository:\n  pth: /x\n", "cairn.yaml:2: repository.pth: unknown key. Try one of: compression, dump_compression"},
		{"sites:\n  blog:\n    environments:\n      prod:\n        filez: /x\n", "cairn.yaml:5: sites.blog.environments.prod.filez: unknown key"},
		{"sites:\n  blog:\n    environments:\n      prod:\n        exclude: cache/\n", "cairn.yaml:5: sites.blog.environments.prod.exclude: expected a list"},
		{"sites:\n  blog: {}\n", "sites.blog: no environments"},
		{"sites:\n  bad name:\n    environments: {p: {files: /x}}\n", "a site name may hold"},
		{"repository: [\n", "cairn.yaml: "},
		{"sites:\n  blog:\n    environments:\n      prod:\n        protected: maybe\n", "cairn.yaml:5: sites.blog.environments.prod.protected: expected true or false"},
		{"sites:\n  blog:\n    environments:\n      prod:\n        files: {a: b}\n", "cairn.yaml:5: sites.blog.environments.prod.files: expected a list, not a mapping"},
		{"sites:\n  blog:\n    environments:\n      prod:\n        url: [a, b]\n", "cairn.yaml:5: sites.blog.environments.prod.url: expected one value, not a list"},
		{"sites:\n  blog:\n    environments:\n      prod:\n        url: {a: b}\n", "cairn.yaml:5: sites.blog.environments.prod.url: expected one value, not a mapping"},
		{"sites:\n  blog:\n    environments: {p: {files: /x}}\n    retention: {daily: lots}\n", "cairn.yaml:4: sites.blog.retention.daily: expected a whole number"},
		{"sites:\n  blog:\n    environments: {p: {files: /x}}\n    replace: {a: [b]}\n", "cairn.yaml:4: sites.blog.replace.a: expected one value, not a list"},
		{"sites:\n  blog:\n    environments: {p: {databases: {a: b}}}\n", "cairn.yaml:3: sites.blog.environments.p.databases: expected a list, not a mapping"},
		{"repository:\n  password: [Zq9secret]\n", "cairn.yaml:2: repository.password: expected one value, not a list"},
		{"sites:\n  blog:\n    environments:\n      prod:\n        databases: mysql://u:Zq9/sec@h/db\n", "cairn.yaml:5: sites.blog.environments.prod.databases: expected a list, e.g. [mysql://u:xxxxx@h/db]"},
	}
	for _, tt := range tests {
		_, err := Parse("cairn.yaml", []byte(tt.src), lookup(nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tt.src, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "Zq9") {
			t.Errorf("Parse(%q) error = %v: it shows the secret", tt.src, err)
		}
	}
}

func TestMissingVariableOnlyWhenUsed(t *testing.T) {
	src := "sites:\n  blog:\n    environments:\n      prod: {files: /x, url: '${PROD_URL}'}\n      dev: {files: /y}\n"
	cfg, err := Parse("c.yaml", []byte(src), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Env("blog", "dev"); err != nil {
		t.Errorf("dev uses no variable but failed: %v", err)
	}
	_, err = cfg.Env("blog", "prod")
	if err == nil || !strings.Contains(err.Error(), "c.yaml:4: sites.blog.environments.prod.url uses ${PROD_URL}, which is not set") {
		t.Errorf("Env(prod) error = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sites:\n  blog:\n    environments:\n      prod: {files: /x}\n")
	f.Add("repository: {path: ${HOME}/r}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("f.yaml", []byte(src), lookup(map[string]string{"HOME": "/h"}))
		if err != nil {
			return
		}
		for site, s := range cfg.Sites {
			for env := range s.Environments {
				cfg.Env(site, env) //nolint:errcheck
			}
		}
	})
}

// An environment is parsed once into the domain's: relative files are
// the config file's directory's; actions and locations are checked at
// load, and a mistake is reported, with the file, line and key, when the
// environment is used.
func TestEnvironmentParsedOnce(t *testing.T) {
	src := "sites:\n  blog:\n    replace: {b: c, a: d}\n    environments:\n      prod:\n        files: www/prod\n        after_restore: [noindex, 'sql: SELECT 1']\n        config: [{file: .env, key: K, value: V}]\n      far: {files: 'ssh://deploy@web1:2222/var/www/'}\n"
	cfg, err := Parse("/etc/cairn/c.yaml", []byte(src), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := cfg.Env("blog", "prod")
	if prod.Files.Path != "/etc/cairn/www/prod" || !prod.Files.IsLocal() {
		t.Errorf("files = %+v", prod.Files)
	}
	if len(prod.AfterRestore) != 2 || prod.AfterRestore[1].Kind != "sql" || prod.AfterRestore[1].Arg != "SELECT 1" {
		t.Errorf("after_restore = %+v", prod.AfterRestore)
	}
	if len(prod.Settings) != 1 || prod.Settings[0].Key != "K" || len(prod.Replace) != 2 || prod.Replace[0].From != "a" {
		t.Errorf("settings = %+v, replace = %+v", prod.Settings, prod.Replace)
	}
	far, _ := cfg.Env("blog", "far")
	if far.Files.Host != "web1" || far.Files.Port != 2222 || far.Files.User != "deploy" || far.Files.Path != "/var/www" || far.Files.String() != "ssh://deploy@web1:2222/var/www" {
		t.Errorf("remote files = %+v (%s)", far.Files, far.Files)
	}
	// A mistake in after_restore matters to a restore onto the environment
	// only: its backups go on.
	typo, err := Parse("c.yaml", []byte("sites:\n  b:\n    environments:\n      p:\n        after_restore: [nope]\n"), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := typo.Env("b", "p"); err != nil {
		t.Errorf("Env of an environment with a typo in after_restore: %v", err)
	}
	if _, err := typo.Target("b", "p"); err == nil || !strings.Contains(err.Error(), "c.yaml:5: sites.b.environments.p.after_restore: after_restore: unknown action \"nope\"") {
		t.Errorf("Target = %v", err)
	}
	for _, tt := range []struct{ src, want string }{

		{"sites:\n  b:\n    environments:\n      p:\n        files: ftp://h/x\n", "c.yaml:5: sites.b.environments.p.files: \"ftp://h/x\" is not a local path nor ssh://"},
		{"sites:\n  b:\n    environments:\n      p:\n        files: ssh://u:Zq9@h/x\n", "a password in an ssh:// location is never accepted"},
	} {
		cfg, err := Parse("c.yaml", []byte(tt.src), lookup(nil))
		if err != nil {
			t.Fatalf("Parse(%q) = %v: one environment's mistake fails the whole file", tt.src, err)
		}
		_, err = cfg.Env("b", "p")
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "Zq9") {
			t.Errorf("Parse(%q) = %v, want %q", tt.src, err, tt.want)
		}
	}
}

// files: takes one location or a list of them, one per web node; the
// first is the one snapshots read.
func TestNodes(t *testing.T) {
	src := "sites:\n  blog:\n    environments:\n      one:\n        files: /var/www\n      two:\n        files: [ssh://web1/var/www, ssh://deploy@web2:2222/var/www]\n      twice:\n        files: [ssh://web1/var/www, ssh://WEB1:22/var/www]\n"
	cfg, err := Parse("cairn.yaml", []byte(src), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	one, err := cfg.Env("blog", "one")
	if err != nil || one.Files.Path != "/var/www" || len(one.Nodes) != 1 {
		t.Errorf("one = %+v, %v", one, err)
	}
	two, err := cfg.Env("blog", "two")
	if err != nil || len(two.Nodes) != 2 || two.Files.Host != "web1" || two.Nodes[1].String() != "ssh://deploy@web2:2222/var/www" {
		t.Errorf("two = %+v, %v", two, err)
	}
	if _, err := cfg.Env("blog", "twice"); err == nil || !strings.Contains(err.Error(), "files[1]: ssh://WEB1:22/var/www is listed twice") {
		t.Errorf("the same node twice: %v", err)
	}
}
