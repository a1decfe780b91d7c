package config

import (
	"encoding/json"
	"testing"
)

// Every field llmprobe writes into a request is refused in a target's body,
// n among them (one choice is what timing is defined for), and nothing else.
func TestManagedBodyFields(t *testing.T) {
	for _, k := range []string{"model", "messages", "prompt", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n"} {
		if !ManagedBodyField(k) {
			t.Errorf("%s: not managed", k)
		}
		cfg := []byte("targets: [{name: t, url: 'http://127.0.0.1:1', model: m, body: {" + k + ": 1}}]\n" +
			"scenarios: [{name: s, load: {rate: 1}}]\nprobes: [{targets: [t], scenarios: [s]}]\n")
		if _, err := LoadBytes(cfg, ""); err == nil || err.Error() != "targets[0].body."+k+": is managed by llmprobe and cannot be set here" {
			t.Errorf("%s in body: %v", k, err)
		}
	}
	for _, k := range []string{"ignore_eos", "temperature", "N", "min_tokens"} {
		if ManagedBodyField(k) {
			t.Errorf("%s: managed", k)
		}
	}
}

// A validated body is JSON-ready at any depth; a key that is not a string
// is refused, never printed into a different one.
func TestJSONValue(t *testing.T) {
	v, err := JSONValue(map[interface{}]interface{}{"a": []interface{}{map[interface{}]interface{}{"b": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := json.Marshal(v); err != nil || string(b) != `{"a":[{"b":1}]}` {
		t.Fatalf("%s, %v", b, err)
	}
	if _, err := JSONValue(map[interface{}]interface{}{1: "x"}); err == nil {
		t.Fatal("an int key was accepted")
	}
}
