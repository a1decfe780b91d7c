package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// The schema check walks the YAML as yaml itself reads it (maps, lists,
// scalars) against the Go types it is decoded into, before the decode. It
// gives every unknown field, wrong type, bad duration and unparseable URL
// its field path (yaml only knows line numbers, and its messages name Go
// types), never quotes a value where a secret may be, and collects the
// secret values so that no error can quote them.

var (
	durationType   = reflect.TypeOf(model.Duration(0))
	urlType        = reflect.TypeOf(config.URL{})
	secretType     = reflect.TypeOf(config.Secret(""))
	tlsVersionType = reflect.TypeOf(config.TLSVersion(0))
	configType     = reflect.TypeOf(Config{})
)

// schemaChecker collects the problems and secrets of one YAML document.
type schemaChecker struct {
	problems []*FieldError
	secrets  *scrubber
	// dupes: keys set twice are reported. Not where YAML merge keys (<<)
	// are used: yaml reads the merged keys as set, and a key set after a
	// merge overrides it, which is allowed. yaml's own message (a line
	// number) reports real duplicates then.
	dupes bool
}

func (k *schemaChecker) add(path, format string, args ...interface{}) {
	k.problems = append(k.problems, fieldErrorf(path, format, args...))
}

// mismatch reports a value of the wrong shape. Under a secret-looking name
// the value is not quoted, and its strings count as secrets (basic_auth:
// hunter2, where a mapping was due, is a password all the same).
func (k *schemaChecker) mismatch(path, want string, v interface{}, secret bool) {
	if secret {
		k.collectAll(v)
	}
	k.add(path, "must be %s, not %s", want, describe(v, secret))
}

// covers reports whether a problem was found at path or under it.
func (k *schemaChecker) covers(path string) bool {
	for _, p := range k.problems {
		f := p.Field
		if f == path || strings.HasPrefix(f, path+".") || strings.HasPrefix(f, path+"[") {
			return true
		}
	}
	return false
}

// checkSchema reads data as plain YAML and checks it against Config.
// A syntax error is returned as such (the typed decode reports it too).
func checkSchema(data []byte, secrets *scrubber) (*schemaChecker, error) {
	k := &schemaChecker{secrets: secrets, dupes: !bytes.Contains(data, []byte("<<"))}
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(data, &doc); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return k, err
		}
		k.add("", "the file must be a YAML mapping with global, targets, scenarios and probes")
		return k, nil
	}
	k.walk("", doc, configType, false)
	return k, nil
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// structField is a yaml-visible field of a struct.
type structField struct {
	name string
	typ  reflect.Type
}

// yamlFields lists the fields yaml decodes into t, in declaration order,
// inline structs merged; inlineMap is the element type of an inline map
// (any other key goes there), or nil.
func yamlFields(t reflect.Type) (fields []structField, inlineMap reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue // unexported
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			switch ft.Kind() {
			case reflect.Struct:
				inner, m := yamlFields(ft)
				fields = append(fields, inner...)
				if m != nil {
					inlineMap = m
				}
			case reflect.Map:
				inlineMap = ft.Elem()
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, structField{name, f.Type})
	}
	return fields, inlineMap
}

// scalarString is how yaml reads a scalar into a string field.
func scalarString(v interface{}) (string, bool) {
	switch v.(type) {
	case yaml.MapSlice, map[interface{}]interface{}, []interface{}:
		return "", false
	}
	return fmt.Sprint(v), true
}

// describe names a YAML value for an error: the value itself, or only
// its kind where it may be a secret.
func describe(v interface{}, secret bool) string {
	switch v.(type) {
	case yaml.MapSlice, map[interface{}]interface{}:
		return "a mapping"
	case []interface{}:
		return "a list"
	case string:
		if secret {
			return "a string"
		}
		return fmt.Sprintf("%q", v)
	}
	if secret {
		return "a " + reflect.TypeOf(v).Kind().String()
	}
	return fmt.Sprint(v)
}

// entries returns the key/value pairs of a YAML mapping.
func entries(v interface{}) (yaml.MapSlice, bool) {
	switch m := v.(type) {
	case yaml.MapSlice:
		return m, true
	case map[interface{}]interface{}:
		ms := make(yaml.MapSlice, 0, len(m))
		for key, val := range m {
			ms = append(ms, yaml.MapItem{Key: key, Value: val})
		}
		sort.Slice(ms, func(i, j int) bool { return fmt.Sprint(ms[i].Key) < fmt.Sprint(ms[j].Key) })
		return ms, true
	}
	return nil, false
}

// collectAll adds every string under v as a secret.
func (k *schemaChecker) collectAll(v interface{}) {
	if ms, ok := entries(v); ok {
		for _, e := range ms {
			k.collectAll(e.Value)
		}
		return
	}
	if l, ok := v.([]interface{}); ok {
		for _, e := range l {
			k.collectAll(e)
		}
		return
	}
	if s, ok := v.(string); ok {
		k.secrets.add(s)
	}
}

// freeForm walks a value of any shape (body, oauth2 claims): strings under
// a secret-looking key, at any depth, are secrets.
func (k *schemaChecker) freeForm(v interface{}, secret bool) {
	if ms, ok := entries(v); ok {
		for _, e := range ms {
			k.freeForm(e.Value, secret || secretLooking(fmt.Sprint(e.Key)))
		}
		return
	}
	if l, ok := v.([]interface{}); ok {
		for _, e := range l {
			k.freeForm(e, secret)
		}
		return
	}
	if s, ok := v.(string); ok {
		if secret {
			k.secrets.add(s)
		}
		for _, u := range userinfoSecrets(s, false) {
			k.secrets.add(u)
		}
	}
}

// walk checks v against t at path. secret is set under a secret-looking
// name (basic_auth, authorization...): values there are never quoted.
func (k *schemaChecker) walk(path string, v interface{}, t reflect.Type, secret bool) {
	if v == nil {
		return // null: the zero value, as yaml does
	}
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	if s, ok := v.(string); ok {
		for _, u := range userinfoSecrets(s, t == urlType) {
			k.secrets.add(u)
		}
	}
	switch t {
	case durationType:
		s, ok := scalarString(v)
		if !ok {
			k.mismatch(path, "a duration such as 30s", v, secret)
		} else if _, err := model.ParseDuration(s); err != nil {
			k.add(path, "%s is not a duration: a number and a unit (ms, s, m, h, d, w, y), e.g. 500ms, 30s or 1m30s", describe(v, secret))
		}
		return
	case urlType:
		s, ok := scalarString(v)
		if !ok {
			k.add(path, "must be a URL, not %s", describe(v, true))
		} else if _, err := url.Parse(s); err != nil {
			k.add(path, "%s", urlProblem(err))
		}
		return
	case secretType:
		if _, ok := scalarString(v); !ok {
			k.collectAll(v)
			k.add(path, "must be a string, not %s", describe(v, true))
			return
		}
		k.secrets.add(fmt.Sprint(v))
		return
	case tlsVersionType:
		s, ok := scalarString(v)
		if _, known := config.TLSVersions[s]; !ok || !known {
			k.add(path, "must be TLS10, TLS11, TLS12 or TLS13, not %s", describe(v, secret))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		ms, ok := entries(v)
		if !ok {
			k.mismatch(path, "a mapping (of "+fieldNames(t)+")", v, secret)
			return
		}
		fields, inlineMap := yamlFields(t)
		seen := map[string]bool{}
		for _, e := range ms {
			name := fmt.Sprint(e.Key)
			p := join(path, name)
			if k.twice(p, name, seen) {
				continue
			}
			found := false
			for _, f := range fields {
				if f.name == name {
					k.walk(p, e.Value, f.typ, secret || secretLooking(name))
					found = true
					break
				}
			}
			switch {
			case found:
			case inlineMap != nil:
				k.walk(p, e.Value, inlineMap, secret || secretLooking(name))
			default:
				k.unknownField(p, name, e.Value, fields)
			}
		}
	case reflect.Slice:
		l, ok := v.([]interface{})
		if !ok {
			k.mismatch(path, "a list", v, secret)
			return
		}
		for i, e := range l {
			k.walk(fmt.Sprintf("%s[%d]", path, i), e, t.Elem(), secret)
		}
	case reflect.Map:
		ms, ok := entries(v)
		if !ok {
			k.mismatch(path, "a mapping", v, secret)
			return
		}
		seen := map[string]bool{}
		for _, e := range ms {
			name := fmt.Sprint(e.Key)
			if k.twice(join(path, name), name, seen) {
				continue
			}
			if secretLooking(name) {
				k.collectAll(e.Value) // headers, endpoint_params
			}
			k.walk(join(path, name), e.Value, t.Elem(), secret || secretLooking(name))
		}
	case reflect.Interface:
		// Free-form (body, claims): its own keys say what is secret
		// (oauth2, say, names no secret though it contains "auth").
		k.freeForm(v, false)
	case reflect.String:
		if _, ok := scalarString(v); !ok {
			k.mismatch(path, "a string", v, secret)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			k.mismatch(path, "true or false", v, secret)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		switch x := v.(type) {
		case int:
			n = int64(x)
		case int64:
			n = x
		case uint64:
			if x > 1<<62 {
				k.add(path, "%v is too large", x)
				return
			}
			n = int64(x)
		case float64:
			// yaml would cut 1.5 to 1; 1e3 and 128.0 are whole.
			if x != math.Trunc(x) || math.Abs(x) > 1<<62 {
				k.mismatch(path, "a whole number", v, secret)
				return
			}
			n = int64(x)
		default:
			k.mismatch(path, "a whole number", v, secret)
			return
		}
		if reflect.Zero(t).OverflowInt(n) {
			k.add(path, "%d is too large", n)
		}
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case int, int64, uint64, float64:
		default:
			k.mismatch(path, "a number", v, secret)
		}
	}
}

// twice reports (and records as a problem) a key already seen in the same
// mapping.
func (k *schemaChecker) twice(path, name string, seen map[string]bool) bool {
	if seen[name] && k.dupes {
		k.add(path, "is set twice; set it once")
		return true
	}
	seen[name] = true
	return false
}

// fieldNames lists the fields of a struct type for an error message.
func fieldNames(t reflect.Type) string {
	fields, _ := yamlFields(t)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

func (k *schemaChecker) unknownField(path, name string, v interface{}, fields []structField) {
	if secretLooking(name) {
		k.collectAll(v) // bearer_tokn: sk-...
	}
	names := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		names[i] = f.name
		if d := editDistance(strings.ToLower(name), f.name); d < bestDist {
			best, bestDist = f.name, d
		}
	}
	hint := ""
	if best != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", best)
	}
	k.add(path, "unknown field%s; allowed here: %s", hint, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoted matches a quoted fragment in net/url's reasons (invalid port
// ":pa" after host): left out, since it may be part of a password.
var quoted = regexp.MustCompile(` ?"(?:[^"\\]|\\.)*"`)

// urlProblem says why a URL does not parse without quoting any of it.
func urlProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "not a valid URL (" + quoted.ReplaceAllString(err.Error(), "") + ")"
}
