// Package config reads cairn.yaml: the repository, the sites and their
// environments. Values may refer to environment variables as ${NAME} so that
// secrets stay out of the file. Every error names the file, the line and the
// key at fault.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
)

// Config is one parsed cairn.yaml.
type Config struct {
	// File is the path the configuration was read from ("" when none).
	File       string
	Repository Repository
	// SSH says how environments on other hosts are reached.
	SSH SSH
	// Sites are the sites, by name, each with its environments parsed
	// into the domain's (see Env).
	Sites map[string]*Site

	// envs are every environment, by SITE/ENV; envErrs what stopped one
	// with an unset ${VAR} from being read (Env reports the variable).
	envs    map[string]*cairn.Environment
	envErrs map[string]error
	// targetErrs are mistakes that matter only to a restore onto the
	// environment (its after_restore): Target reports them, Env does not,
	// so a typo there never stops the environment's backups.
	targetErrs map[string]error
	// missing maps key paths to the environment variables they referred
	// to that were not set. A key is only an error when it is used.
	missing map[string]missingVar
	// doc is the parsed document, for Check's file:line.
	doc *yaml.Node
}

// document is cairn.yaml as written.
type document struct {
	Repository Repository          `yaml:"repository"`
	SSH        SSH                 `yaml:"ssh"`
	Sites      map[string]*siteDoc `yaml:"sites"`
}

// SSH says how environments on other hosts (files: ssh://…, databases
// through ?ssh=) are reached. Paths are relative to the config file.
type SSH struct {
	// KnownHosts is the known_hosts file host keys are checked against
	// ("": ~/.ssh/known_hosts).
	KnownHosts string `yaml:"known_hosts"`
	// HostKeyPolicy is strict (the default: a host known_hosts lacks is
	// refused) or accept-new (its key is recorded on first use).
	HostKeyPolicy string `yaml:"host_key_policy"`
	// IdentityFile are key files tried after ssh-agent's keys (default:
	// ~/.ssh/config's IdentityFile, else ~/.ssh/id_*).
	IdentityFile []string `yaml:"identity_file"`
	// Config is the ssh_config file ("": ~/.ssh/config; "none": none).
	Config string `yaml:"config"`
	// Timeout bounds connecting and each keepalive's answer ("15s").
	Timeout string `yaml:"timeout"`
}

type missingVar struct {
	name string
	line int
}

// Repository says where snapshots live.
type Repository struct {
	// URL is s3://bucket/prefix?endpoint=…&region=… or file:///path.
	URL string `yaml:"url"`
	// Path is a local directory (the same as url: file:///path).
	Path         string        `yaml:"path"`
	Password     cairn.Secret  `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	S3           S3Credentials `yaml:"s3"`
	// Compression overrides the default compressor ("zstd-fastest").
	Compression string `yaml:"compression"`
	// DumpCompression overrides the database dumps' ("s2-default").
	DumpCompression string `yaml:"dump_compression"`
}

// S3Credentials are S3 keys given in the config rather than through the
// usual AWS_* environment variables.
type S3Credentials struct {
	AccessKeyID     string       `yaml:"access_key_id"`
	SecretAccessKey cairn.Secret `yaml:"secret_access_key"`
	SessionToken    cairn.Secret `yaml:"session_token"`
	Region          string       `yaml:"region"`
}

// Site is a named application: its environments and its schedules.
type Site struct {
	Name         string
	Environments map[string]*cairn.Environment
	Schedule     map[string]string
	Retention    map[string]int
}

// siteDoc is a site as written.
type siteDoc struct {
	Environments map[string]*environmentDoc `yaml:"environments"`
	Schedule     map[string]string          `yaml:"schedule"`
	Retention    map[string]int             `yaml:"retention"`
	Replace      map[string]string          `yaml:"replace"`
}

// environmentDoc is an environment as written.
type environmentDoc struct {
	URL          string   `yaml:"url"`
	Files        nodes    `yaml:"files"`
	Databases    []string `yaml:"databases"`
	Exclude      []string `yaml:"exclude"`
	Preserve     []string `yaml:"preserve"`
	AfterRestore []string `yaml:"after_restore"`
	// Config sets settings in the environment's own files after a restore
	// onto it (for what cairn does not configure by itself).
	Config    []ConfigRule `yaml:"config"`
	Protected bool         `yaml:"protected"`
	// SSH is the [user@]host[:port] the databases are reached through,
	// for those whose DSN names none (?ssh=).
	SSH string `yaml:"ssh"`
}

// nodes is files: one location, or a list of them (one per web node).
type nodes []string

func (n *nodes) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind == yaml.ScalarNode {
		*n = nodes{v.Value}
		return nil
	}
	var list []string
	if err := v.Decode(&list); err != nil {
		return err
	}
	*n = list
	return nil
}

// ConfigRule sets Key to Value in File (see cairn.Setting).
type ConfigRule struct {
	File  string `yaml:"file"`
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// Find returns the configuration file to use: flag, then $CAIRN_CONFIG, then
// ./cairn.yaml if it exists. It returns "" when there is none.
func Find(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("CAIRN_CONFIG"); env != "" {
		return env
	}
	if _, err := os.Stat("cairn.yaml"); err == nil {
		return "cairn.yaml"
	}
	return ""
}

// Load reads and checks a configuration file. An empty path yields an empty
// configuration (the default local repository, no sites).
func Load(path string) (*Config, error) {
	if path == "" {
		return &Config{Sites: map[string]*Site{}}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config %s does not exist. Try: create it (see README, Configuration) or pass --config", path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses configuration text; name is used in error messages and
// lookup resolves ${VAR} references.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	// ${VAR} is swapped for a placeholder that is plain text in any YAML
	// context (a '{' inside [a, b] would be a syntax error), then expanded
	// in each value once parsed.
	data = varRE.ReplaceAll(data, []byte(placeholder+"${1}"+placeholderEnd))
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %v. Try: check the YAML syntax (indentation, quotes) at that line", name, trimYAML(err))
	}
	cfg := &Config{File: name, Sites: map[string]*Site{}, envs: map[string]*cairn.Environment{}, envErrs: map[string]error{}, targetErrs: map[string]error{}, missing: map[string]missingVar{}}
	if len(root.Content) == 0 {
		return cfg, nil
	}
	doc := root.Content[0]
	if err := checkKeys(name, doc, reflect.TypeOf(document{}), ""); err != nil {
		return nil, err
	}
	if err := expand(name, doc, "", lookup, cfg.missing); err != nil {
		return nil, err
	}
	var d document
	if err := doc.Decode(&d); err != nil {
		// A type error quotes the value, which may be a secret.
		return nil, fmt.Errorf("%s: %s", name, quotedRE.ReplaceAllString(trimYAML(err), "a value"))
	}
	cfg.doc, cfg.Repository, cfg.SSH = doc, d.Repository, d.SSH
	if err := cfg.checkSSH(); err != nil {
		return nil, err
	}
	if err := cfg.convert(d.Sites); err != nil {
		return nil, err
	}
	return cfg, nil
}

func trimYAML(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "unmarshal errors:\n  ")
}

var (
	quotedRE      = regexp.MustCompile("`[^`]*`")
	varRE         = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	placeholderRE = regexp.MustCompile(placeholder + `([A-Za-z_][A-Za-z0-9_]*)` + placeholderEnd)
)

// A variable's placeholder is placeholder NAME placeholderEnd: the dashes,
// which no name holds, keep ${A}${B} two variables.
const placeholder, placeholderEnd = "__cairn-var-", "-cairn-var__"

// expand replaces ${VAR} in every scalar, remembering unset variables.
func expand(file string, n *yaml.Node, path string, lookup func(string) (string, bool), missing map[string]missingVar) error {
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = placeholderRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := placeholderRE.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok {
				missing[path] = missingVar{name: name, line: n.Line}
			}
			return v
		})
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expand(file, n.Content[i+1], join(path, n.Content[i].Value), lookup, missing); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expand(file, c, fmt.Sprintf("%s[%d]", path, i), lookup, missing); err != nil {
				return err
			}
		}
	case yaml.AliasNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if err := expand(file, c, path, lookup, missing); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkKeys reports keys that the configuration does not know, with the
// keys that would have been accepted there.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(nodes{}) && n.Kind == yaml.ScalarNode {
		return nil // one location, or a list of them
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		known := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				known[tag] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := known[k.Value]
			if !ok {
				return fmt.Errorf("%s:%d: %s: unknown key. Try one of: %s", file, k.Line, join(path, k.Value), strings.Join(sortedKeys(known), ", "))
			}
			if err := checkKeys(file, n.Content[i+1], ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(file, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			return fmt.Errorf("%s:%d: %s: expected a mapping of keys to values", file, n.Line, path)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if err := checkKeys(file, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && n.Tag != "!!null":
		return fmt.Errorf("%s:%d: %s: expected a list, e.g. [%s]", file, n.Line, path, cairn.RedactDSN(n.Value))
	case t.Kind() == reflect.Slice && n.Kind == yaml.MappingNode:
		return fmt.Errorf("%s:%d: %s: expected a list, not a mapping of keys to values", file, n.Line, path)
	default:
		return checkScalar(file, n, t, path)
	}
	return nil
}

// checkScalar reports a value of the wrong type (a list where one value
// is wanted, a word where true or false is) without quoting it: it may be
// a secret.
func checkScalar(file string, n *yaml.Node, t reflect.Type, path string) error {
	var want string
	switch t.Kind() {
	case reflect.String:
		want = "one value"
	case reflect.Bool:
		want = "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		want = "a whole number"
	default:
		return nil
	}
	switch {
	case n.Kind == yaml.SequenceNode:
		return fmt.Errorf("%s:%d: %s: expected %s, not a list", file, n.Line, path, want)
	case n.Kind == yaml.MappingNode:
		return fmt.Errorf("%s:%d: %s: expected %s, not a mapping of keys to values", file, n.Line, path, want)
	case n.Kind != yaml.ScalarNode || n.Tag == "!!null" || strings.Contains(n.Value, placeholder):
		return nil
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		return fmt.Errorf("%s:%d: %s: expected %s", file, n.Line, path, want)
	}
	return nil
}

// Check runs check on the value of every key that pattern matches
// (dot-separated keys; * is any key of a mapping, [*] any item of a list:
// "sites.*.environments.*.databases[*]"), and turns its first failure into
// an error naming the file, the line and the key. Values that use an unset
// ${VAR} are left for Env to report. check's error is kept as text only:
// a config error is a config error, whatever check found.
func (c *Config) Check(pattern string, check func(value string) error) error {
	if c.doc == nil {
		return nil
	}
	return c.walk(c.doc, strings.Split(pattern, "."), "", check)
}

func (c *Config) walk(n *yaml.Node, segs []string, path string, check func(string) error) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if len(segs) == 0 {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return nil
		}
		if _, unset := c.missing[path]; unset {
			return nil
		}
		if err := check(n.Value); err != nil {
			return fmt.Errorf("%s:%d: %s: %s", c.File, n.Line, path, strings.TrimPrefix(err.Error(), cairn.ErrInvalidArgument.Error()+": "))
		}
		return nil
	}
	key, list := strings.CutSuffix(segs[0], "[*]")
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if key != "*" && k != key {
			continue
		}
		p := join(path, k)
		if !list {
			if err := c.walk(v, segs[1:], p, check); err != nil {
				return err
			}
			continue
		}
		if v.Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range v.Content {
			if err := c.walk(item, segs[1:], fmt.Sprintf("%s[%d]", p, j), check); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineOf finds the line of a nested key, or 0.
func lineOf(n *yaml.Node, keys ...string) int {
	line := 0
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		n = next
	}
	return line
}

// Env returns SITE/ENV, checking that every ${VAR} it uses is set.
func (c *Config) Env(site, env string) (*cairn.Environment, error) {
	s, ok := c.Sites[site]
	if !ok {
		where := "no configuration file"
		if c.File != "" {
			where = c.File
		}
		return nil, fmt.Errorf("site %q is not in %s: %w. Try: add it under sites:, or name a directory instead", site, where, cairn.ErrNotFound)
	}
	e, ok := s.Environments[env]
	if !ok {
		return nil, fmt.Errorf("site %q has no environment %q in %s (it has: %s): %w", site, env, c.File, strings.Join(sortedKeys(s.Environments), ", "), cairn.ErrNotFound)
	}
	if err := c.checkMissing("sites." + site + ".environments." + env); err != nil {
		return nil, err
	}
	if err := c.envErrs[e.Name()]; err != nil {
		return nil, err
	}
	return e, nil
}

// Target returns SITE/ENV as a restore or clone target: Env, and its
// after_restore actions checked too.
func (c *Config) Target(site, env string) (*cairn.Environment, error) {
	e, err := c.Env(site, env)
	if err != nil {
		return nil, err
	}
	if err := c.targetErrs[e.Name()]; err != nil {
		return nil, err
	}
	return e, nil
}

// Has tells whether the config names SITE/ENV.
func (c *Config) Has(site, env string) bool {
	_, ok := c.envs[site+"/"+env]
	return ok
}

// Environments lists every environment, sorted by name.
func (c *Config) Environments() []*cairn.Environment {
	out := make([]*cairn.Environment, 0, len(c.envs))
	for _, name := range sortedKeys(c.envs) {
		out = append(out, c.envs[name])
	}
	return out
}

// CheckRepository reports a repository setting whose ${VAR} is unset.
func (c *Config) CheckRepository() error { return c.checkMissing("repository") }

func (c *Config) checkMissing(prefix string) error {
	for _, key := range sortedKeys(c.missing) {
		if key == prefix || strings.HasPrefix(key, prefix+".") || strings.HasPrefix(key, prefix+"[") {
			m := c.missing[key]
			return fmt.Errorf("%s:%d: %s uses ${%s}, which is not set. Try: export %s=… before running cairn", c.File, m.line, key, m.name, m.name)
		}
	}
	return nil
}

// FindByPath returns the environment whose files are the local directory
// dir, however either is spelled.
func (c *Config) FindByPath(dir string) (*cairn.Environment, bool) {
	abs, err := files.Resolve(dir)
	if err != nil {
		return nil, false
	}
	for _, e := range c.Environments() {
		if e.Files.Path == "" || !e.Files.IsLocal() {
			continue
		}
		if fa, err := files.Resolve(e.Files.Path); err == nil && fa == abs {
			return e, true
		}
	}
	return nil, false
}

// resolve makes a relative path relative to the config file's directory.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

func (c *Config) checkSSH() error {
	switch c.SSH.HostKeyPolicy {
	case "", "strict", "accept-new":
	default:
		return fmt.Errorf("%s: %q is not a host key policy. Try: strict or accept-new", c.Where("ssh.host_key_policy"), c.SSH.HostKeyPolicy)
	}
	if c.SSH.Timeout != "" {
		if d, err := time.ParseDuration(c.SSH.Timeout); err != nil || d <= 0 {
			return fmt.Errorf("%s: %q is not a duration. Try: 15s, 1m", c.Where("ssh.timeout"), c.SSH.Timeout)
		}
	}
	c.SSH.KnownHosts = c.resolveHome(c.SSH.KnownHosts)
	if c.SSH.Config != "none" {
		c.SSH.Config = c.resolveHome(c.SSH.Config)
	}
	for i, f := range c.SSH.IdentityFile {
		c.SSH.IdentityFile[i] = c.resolveHome(f)
	}
	return nil
}

// resolveHome is resolve, with ~/ the user's home directory as in ssh's
// own files.
func (c *Config) resolveHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return c.resolve(p)
}

// PasswordFilePath returns repository.password_file resolved like
// FilesPath.
func (c *Config) PasswordFilePath() string { return c.resolve(c.Repository.PasswordFile) }

// Where names a key for messages: "FILE:LINE: KEY" (dot-separated keys).
func (c *Config) Where(key string) string {
	if c.File == "" {
		return key
	}
	return fmt.Sprintf("%s:%d: %s", c.File, lineOf(c.doc, strings.Split(key, ".")...), key)
}

// RepositoryPath returns repository.path resolved like FilesPath.
func (c *Config) RepositoryPath() string { return c.resolve(c.Repository.Path) }
