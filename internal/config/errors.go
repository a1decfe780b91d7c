package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Errors is every problem found in a configuration, in the order found
// (mostly file order). Error joins them with newlines; print them one per
// line with ErrorList, so that a log line never carries a literal "\n".
type Errors []error

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As the individual problems.
func (e Errors) Unwrap() []error { return e }

// ErrorList returns the problems an error from LoadFile, LoadBytes or
// Default reports, one per element, each a full message ("config file
// "x.yml": scenarios[0].timeout: ..."). Any other error comes back as the
// only element; nil gives nil. An Errors wrapped inside another error is
// found, but the wrapping's own text is then not repeated on each element.
func ErrorList(err error) []error {
	if err == nil {
		return nil
	}
	var errs Errors
	if errors.As(err, &errs) {
		return errs
	}
	return []error{err}
}

// FieldError is one problem with one field of the configuration.
type FieldError struct {
	// Field is the path of the field at fault (targets[1].url,
	// scenarios[0].load.rate); empty for a problem of the whole file (YAML
	// syntax, size).
	Field string
	// Problem says what is wrong and what is allowed. It never quotes a
	// secret.
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

func fieldErrorf(field, format string, args ...interface{}) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// prefixed prepends prefix to every problem of err, keeping it an Errors.
func prefixed(prefix string, err error) error {
	list := ErrorList(err)
	out := make(Errors, len(list))
	for i, e := range list {
		out[i] = fmt.Errorf("%s: %w", prefix, e)
	}
	return out
}

// secretWords mark names (target headers, body keys at any depth, oauth2
// endpoint_params) that likely carry a secret: X-Api-Key, X-Auth-Token,
// access_token, Cookie... The one list for validation (such headers must go
// in http_client_config.http_headers) and for the shown configuration
// (such body values print as <secret>).
var secretWords = []string{"auth", "key", "token", "secret", "password", "passwd", "cookie", "credential", "signature"}

// harmlessWords contain a secret word but name token counts or tokenizer
// settings (max_tokens, skip_special_tokens, tokenizer_mode): they are
// taken out before secretWords are looked for.
var harmlessWords = []string{"tokens", "tokeniz"}

// secretLooking reports whether a header name or map key looks like it
// carries a secret.
func secretLooking(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range harmlessWords {
		lower = strings.ReplaceAll(lower, w, " ")
	}
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// authority returns the bounds of the authority part (user:pass@host:port)
// of the first URL in s that has a scheme, from the index start on: it
// runs to the first '/', '?', '#' or white space. ok is false when s has
// no "://" from start on.
func authority(s string, start int) (from, to int, ok bool) {
	i := strings.Index(s[start:], "://")
	if i < 0 {
		return 0, 0, false
	}
	from = start + i + 3
	to = from
	for to < len(s) && !strings.ContainsRune("/?# \t\r\n", rune(s[to])) {
		to++
	}
	return from, to, true
}

// redactUserinfo replaces the password of a userinfo (user:pass) by
// <secret>, or the whole of it when it has no password (a token alone,
// https://TOKEN@host, is a secret too).
func redactUserinfo(userinfo string) string {
	if c := strings.IndexByte(userinfo, ':'); c >= 0 {
		return userinfo[:c+1] + Redacted
	}
	return Redacted
}

// redactURLs hides the userinfo password of every URL with a scheme in s
// (see redactUserinfo), whether or not the URL parses.
func redactURLs(s string) string {
	var b strings.Builder
	pos := 0
	for {
		from, to, ok := authority(s, pos)
		if !ok {
			break
		}
		if at := strings.LastIndexByte(s[from:to], '@'); at >= 0 {
			b.WriteString(s[pos:from])
			b.WriteString(redactUserinfo(s[from : from+at]))
			pos = from + at
		}
		b.WriteString(s[pos:to])
		pos = to
	}
	b.WriteString(s[pos:])
	return b.String()
}

// userinfoSecrets returns the secrets a URL-looking string carries: the
// userinfo password (or the lone user, see redactUserinfo), found the way
// redactURLs finds them, or, when schemeless is set and s has no scheme,
// in the text before the first '/' (a proxy_url written user:pass@host).
func userinfoSecrets(s string, schemeless bool) []string {
	var out []string
	add := func(auth string) {
		at := strings.LastIndexByte(auth, '@')
		if at < 0 {
			return
		}
		ui := auth[:at]
		if c := strings.IndexByte(ui, ':'); c >= 0 {
			ui = ui[c+1:]
		}
		if ui != "" {
			out = append(out, ui)
		}
	}
	pos, found := 0, false
	for {
		from, to, ok := authority(s, pos)
		if !ok {
			break
		}
		found = true
		add(s[from:to])
		pos = to
	}
	if !found && schemeless {
		end := strings.IndexAny(s, "/?# \t\r\n")
		if end < 0 {
			end = len(s)
		}
		add(s[:end])
	}
	return out
}

// scrubber removes secrets from error messages: every URL's userinfo
// password, and every secret value found in the configuration (also in the
// shortened form yaml quotes long values in: `abcdefg...`).
type scrubber struct {
	secrets map[string]bool
}

func newScrubber() *scrubber { return &scrubber{secrets: map[string]bool{}} }

func (s *scrubber) add(secret string) {
	if secret != "" && secret != Redacted {
		s.secrets[secret] = true
	}
}

var yamlShortened = regexp.MustCompile("`([^`]{7})\\.\\.\\.`")

func (s *scrubber) text(msg string) string {
	list := make([]string, 0, len(s.secrets))
	for k := range s.secrets {
		list = append(list, k)
	}
	// Longest first, so that a secret containing another goes whole.
	sort.Slice(list, func(i, j int) bool {
		if len(list[i]) != len(list[j]) {
			return len(list[i]) > len(list[j])
		}
		return list[i] < list[j]
	})
	for _, secret := range list {
		msg = strings.ReplaceAll(msg, secret, Redacted)
	}
	msg = yamlShortened.ReplaceAllStringFunc(msg, func(m string) string {
		head := m[1:8]
		for _, secret := range list {
			if strings.HasPrefix(secret, head) {
				return "`" + Redacted + "`"
			}
		}
		return m
	})
	return redactURLs(msg)
}

// errors scrubs every problem of err, keeping FieldErrors as such.
func (s *scrubber) errors(err error) error {
	if err == nil {
		return nil
	}
	list := ErrorList(err)
	out := make(Errors, 0, len(list))
	for _, e := range list {
		var fe *FieldError
		if errors.As(e, &fe) && fe == e {
			out = append(out, &FieldError{Field: s.text(fe.Field), Problem: s.text(fe.Problem)})
			continue
		}
		out = append(out, &FieldError{Problem: s.text(e.Error())})
	}
	return out
}
