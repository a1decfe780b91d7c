package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A body over MaxBodyBytes (JSON-encoded) is refused, naming the field and
// the limit; one just under is accepted.
func TestBodyLimit(t *testing.T) {
	body := func(n int) string { return `body: {stop: ["` + strings.Repeat("a", n) + `"]}` }
	mustLoad(t, minimal(body(MaxBodyBytes-100)), "")
	_, err := LoadBytes([]byte(minimal(body(MaxBodyBytes))), "")
	want := "targets[0].body: is 1048589 bytes as JSON; at most 1048576 (1 MiB) allowed: it is sent with every request"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// A file over MaxFileBytes is refused before it is parsed.
func TestFileLimit(t *testing.T) {
	big := []byte(minimal(`body: {stop: ["` + strings.Repeat("a", MaxFileBytes) + `"]}`))
	path := filepath.Join(t.TempDir(), "big.yml")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	want := `config file "` + path + `": the file is larger than 4194304 bytes (4 MiB), the most a configuration may be`
	if _, err := LoadFile(path); err == nil || err.Error() != want {
		t.Errorf("LoadFile error = %v, want %s", err, want)
	}
	if _, err := LoadBytes(big, ""); err == nil || !strings.Contains(err.Error(), "larger than 4194304 bytes") {
		t.Errorf("LoadBytes error = %v", err)
	}
}

// ErrorList gives one problem per element, each a *FieldError naming its
// field; Error joins them.
func TestErrorList(t *testing.T) {
	_, err := LoadFile("testdata/bad_multiple.yml")
	list := ErrorList(err)
	if len(list) != 4 {
		t.Fatalf("ErrorList = %d problems, want 4: %v", len(list), list)
	}
	var lines []string
	for _, e := range list {
		lines = append(lines, e.Error())
		var fe *FieldError
		if !errors.As(e, &fe) || fe.Field == "" {
			t.Errorf("%v: not a *FieldError with a field", e)
		}
	}
	if err.Error() != strings.Join(lines, "\n") {
		t.Errorf("Error() is not the problems joined by newlines")
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 4 {
		t.Errorf("LoadFile's error is not an Errors of 4")
	}
	if got := ErrorList(errors.New("x")); len(got) != 1 || got[0].Error() != "x" {
		t.Errorf("ErrorList(plain error) = %v", got)
	}
	if ErrorList(nil) != nil {
		t.Error("ErrorList(nil) != nil")
	}
}

// One list of secret-looking words serves validation and redaction; token
// counts are not secrets.
func TestSecretLooking(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Api-Key": true, "access_token": true, "X-Auth-Token": true, "client_secret": true, "Cookie": true,
		"password": true, "passwd": true, "credentials": true, "x-signature": true, "apikey": true,
		"min_tokens": false, "skip_special_tokens": false, "tokenizer_mode": false, "ignore_eos": false, "X-Request-Id": false,
	} {
		if got := secretLooking(name); got != want {
			t.Errorf("secretLooking(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:pw@h:1/p":                       "http://u:<secret>@h:1/p",
		"https://tok@h":                           "https://<secret>@h",
		`parse "http://u:PROXYSECRET@[::1": bad`:  `parse "http://u:<secret>@[::1": bad`,
		"a http://h/x@y and socks5://a:b@c:1 end": "a http://h/x@y and socks5://a:<secret>@c:1 end",
		"no url here: a@b":                        "no url here: a@b",
		"http://u:p@ss@h":                         "http://u:<secret>@h",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whole numbers may be written as floats (1e3, 128.0); a fraction, which
// yaml would silently cut, is refused.
func TestWholeNumbers(t *testing.T) {
	load := func(v string) error {
		_, err := LoadBytes([]byte(`
targets: [{name: v, url: "http://127.0.0.1:1", model: m}]
scenarios: [{name: s, load: {rate: 1}, workload: {input_tokens: {value: `+v+`}}}]
probes: [{targets: [v], scenarios: [s]}]
`), "")
		return err
	}
	for _, ok := range []string{"1e3", "128.0", "128"} {
		if err := load(ok); err != nil {
			t.Errorf("value: %s: %v", ok, err)
		}
	}
	want := "scenarios[0].workload.input_tokens.value: must be a whole number, not 1.5"
	if err := load("1.5"); err == nil || err.Error() != want {
		t.Errorf("value: 1.5: error %v, want %s", err, want)
	}
}
