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
        files: /var/www/staging
        preserve: [wp-content/uploads/]
    schedule: {snapshot: "0 */6 * * *", drill: "@weekly"}
    retention: {daily: 14, weekly: 8}
`
	cfg, err := Parse("cairn.yaml", []byte(src), lookup(map[string]string{"CAIRN_PASSWORD": "s3cret", "DB_PASS": "p@ss"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Repository.Password.Reveal(); got != "s3cret" {
		t.Errorf("password = %q", got)
	}
	prod, err := cfg.Env("blog", "production")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Name != "blog/production" || !prod.Protected || prod.Databases[0] != "mysql://backup:p@ss@db1:3306/wordpress" || prod.Exclude[0] != "wp-content/cache/" {
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
		{"sites:\n  blog:\n    environments:\n      prod:\n        files: [a, b]\n", "cairn.yaml:5: sites.blog.environments.prod.files: expected one value, not a list"},
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
