package cairn

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// DSN is a database DSN with its user information taken apart, so that
// the password never reaches a URL parser (whose errors quote what they
// could not parse) nor a message.
type DSN struct {
	User     string
	Password Secret
	// Rest is the DSN without its user information,
	// scheme://host:port/path?query: safe to parse and to print.
	Rest string
	full Secret // the DSN as given
}

// NewDSN holds a DSN as given, taken apart where it can be (see
// SplitDSN; one that cannot is kept whole, for its engine to refuse).
func NewDSN(s string) DSN {
	d, err := SplitDSN(s)
	if err != nil {
		return DSN{full: Secret(s)}
	}
	return d
}

// Reveal returns the DSN as given, password included, for its engine.
func (d DSN) Reveal() string { return d.full.Reveal() }

// String is the DSN without its password, for people.
func (d DSN) String() string { return RedactDSN(d.full.Reveal()) }

// ErrAmbiguousDSN means a DSN's user information cannot be told apart
// from its host and path. The message never quotes the DSN.
var ErrAmbiguousDSN = errors.New("the DSN's user name or password holds characters (@ / ? #) that cannot be told apart from its host and path. Try: URL-encode them (@ %40, / %2F, ? %3F, # %23, % %25)")

// afterUserinfo is what follows user information: a host (name, IPv4 or
// [IPv6], or none for a socket), a port, one path segment (the database)
// and options.
var afterUserinfo = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*)(:[0-9]*)?/[^/?#@]*(\?[^#]*)?$`)

// hostFollows is a host and a port followed by anything else.
var hostFollows = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*)(:[0-9]*)?([/?].*)?$`)

// SplitDSN takes a DSN's user name and password out. A password may hold
// any character, URL-encoded or not where that is unambiguous: the '@'
// that separates the user information is the one followed by a host, a
// port and one database name (mysql://user:pa/ss?w#rd@host:3306/db). A
// '%' followed by two hex digits is read as an escape, any other '%' as
// itself.
func SplitDSN(dsn string) (DSN, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return DSN{Rest: dsn, full: Secret(dsn)}, nil
	}
	var at int
	var strict, loose []int
	for i := 0; i < len(rest); i++ {
		if rest[i] != '@' {
			continue
		}
		if afterUserinfo.MatchString(rest[i+1:]) {
			strict = append(strict, i)
		}
		if hostFollows.MatchString(rest[i+1:]) {
			loose = append(loose, i)
		}
	}
	// The standard reading: user information ends at the last '@' before
	// the first '/', '?' or '#'.
	std := strings.LastIndex(rest, "@")
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		std = strings.LastIndex(rest[:end], "@")
	}
	if afterUserinfo.MatchString(rest[std+1:]) && !slices.Contains(strict, std) {
		strict = append(strict, std)
	}
	switch {
	case len(strict) == 1:
		at = strict[0]
	case len(strict) > 1:
		return DSN{}, ErrAmbiguousDSN
	case len(loose) > 0:
		// Not a valid DSN (its database is missing): hide as much as
		// could be a password, for the message that says so.
		at = loose[len(loose)-1]
	default:
		at = std
	}
	if at < 0 {
		return DSN{Rest: dsn, full: Secret(dsn)}, nil
	}
	user, pass, hasPass := strings.Cut(rest[:at], ":")
	d := DSN{User: unescape(user), Rest: scheme + "://" + rest[at+1:], full: Secret(dsn)}
	if hasPass {
		d.Password = Secret(unescape(pass))
	}
	return d, nil
}

func unescape(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	// A '%' that starts no escape is itself.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v, _ := url.PathUnescape(s[i : i+3])
			b.WriteString(v)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// RedactDSN removes the password from a database DSN or repository URL,
// for messages: user:secret@host becomes user:xxxxx@host. What cannot be
// taken apart is not shown.
func RedactDSN(dsn string) string {
	d, err := SplitDSN(dsn)
	scheme, _, hasScheme := strings.Cut(dsn, "://")
	switch {
	case err != nil:
		return scheme + "://…"
	case !hasScheme:
		if strings.ContainsAny(dsn, "@:") {
			return "…"
		}
		return dsn
	case d.Rest == dsn:
		return dsn
	}
	user := url.User(d.User).String()
	if d.Password != "" {
		user += ":xxxxx"
	}
	return scheme + "://" + user + "@" + strings.TrimPrefix(d.Rest, scheme+"://")
}
