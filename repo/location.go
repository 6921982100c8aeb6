package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
)

// Location says where a repository's data lives.
type Location struct {
	// Path is set for a local directory repository.
	Path string
	// S3 is set for an S3-compatible repository.
	S3 *S3Location
}

// S3Location is an s3://bucket/prefix URL with its options.
type S3Location struct {
	Bucket, Prefix string
	Endpoint       string // host[:port], without scheme
	Region         string
	Insecure       bool // plain HTTP
	SkipVerify     bool // do not verify the TLS certificate
	// Credentials; empty values fall back to AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
	AccessKeyID     string
	SecretAccessKey cairn.Secret
	SessionToken    cairn.Secret
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseLocation reads a repository URL: a plain path, file:///path, or
// s3://bucket[/prefix][?endpoint=URL&region=R&tls=false&insecure-skip-verify=true&path-style=true].
func ParseLocation(raw string) (Location, error) {
	if !strings.Contains(raw, "://") {
		if raw == "" {
			return Location{}, fmt.Errorf("%w: empty repository location", cairn.ErrInvalidArgument)
		}
		abs, err := filepath.Abs(raw)
		if err != nil {
			return Location{}, err
		}
		return Location{Path: abs}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("%w: repository url %q: %v", cairn.ErrInvalidArgument, raw, err)
	}
	switch u.Scheme {
	case "file":
		return ParseLocation(u.Path)
	case "s3":
		return parseS3(u)
	}
	return Location{}, fmt.Errorf("%w: repository url %q: unknown scheme %q. Try: a path, file:///path or s3://bucket/prefix", cairn.ErrInvalidArgument, raw, u.Scheme)
}

func parseS3(u *url.URL) (Location, error) {
	s := &S3Location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Endpoint: "s3.amazonaws.com"}
	if !bucketRE.MatchString(s.Bucket) || strings.Contains(s.Bucket, "..") {
		return Location{}, fmt.Errorf("%w: %q is not a valid S3 bucket name (3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)", cairn.ErrInvalidArgument, s.Bucket)
	}
	if s.Prefix != "" {
		s.Prefix += "/"
	}
	q := u.Query()
	for key := range q {
		switch key {
		case "endpoint", "region", "tls", "insecure-skip-verify", "path-style":
		default:
			return Location{}, fmt.Errorf("%w: s3 url: unknown option %q. Try: endpoint, region, tls, insecure-skip-verify, path-style", cairn.ErrInvalidArgument, key)
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		if strings.Contains(ep, "://") {
			eu, err := url.Parse(ep)
			if err != nil || eu.Host == "" {
				return Location{}, fmt.Errorf("%w: s3 endpoint %q is not a URL", cairn.ErrInvalidArgument, ep)
			}
			s.Endpoint, s.Insecure = eu.Host, eu.Scheme == "http"
		} else {
			s.Endpoint = ep
		}
	}
	s.Region = q.Get("region")
	for key, dst := range map[string]*bool{"tls": nil, "insecure-skip-verify": &s.SkipVerify, "path-style": nil} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Location{}, fmt.Errorf("%w: s3 option %s=%q: want true or false", cairn.ErrInvalidArgument, key, v)
		}
		switch {
		case key == "tls":
			s.Insecure = !b
		case key == "path-style" && !b:
			// minio-go chooses virtual-hosted style for AWS and path
			// style for every other endpoint; it cannot be forced.
			return Location{}, fmt.Errorf("%w: path-style=false is not supported: cairn uses virtual-hosted addressing on AWS and path-style elsewhere", cairn.ErrInvalidArgument)
		case dst != nil:
			*dst = b
		}
	}
	return Location{S3: s}, nil
}

// String shows the location without credentials.
func (l Location) String() string {
	if l.S3 != nil {
		scheme := "https"
		if l.S3.Insecure {
			scheme = "http"
		}
		return fmt.Sprintf("s3://%s/%s (%s://%s)", l.S3.Bucket, l.S3.Prefix, scheme, l.S3.Endpoint)
	}
	return l.Path
}

// ID is a short stable identifier of the location, used to name the
// repository's key file and its state directory.
func (l Location) ID() string {
	var key string
	if l.S3 != nil {
		key = "s3:" + l.S3.Endpoint + "/" + l.S3.Bucket + "/" + l.S3.Prefix
	} else {
		key = "fs:" + l.Path
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// withEnvCredentials fills empty S3 credentials from the AWS_* variables.
func (s *S3Location) withEnvCredentials() S3Location {
	c := *s
	if c.AccessKeyID == "" {
		c.AccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
		c.SecretAccessKey = cairn.Secret(os.Getenv("AWS_SECRET_ACCESS_KEY"))
		c.SessionToken = cairn.Secret(os.Getenv("AWS_SESSION_TOKEN"))
	}
	if c.Region == "" {
		c.Region = os.Getenv("AWS_REGION")
		if c.Region == "" {
			c.Region = os.Getenv("AWS_DEFAULT_REGION")
		}
	}
	return c
}
