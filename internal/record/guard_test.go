package record

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// workerLocal are the fields that deliberately stay in the worker process
// that measured the request: they are used there (logged, or acted on) and
// never aggregated. Any other field must survive the pipe.
var workerLocal = map[string]string{
	"Result.RetryAfter": "the server's Retry-After: the worker's back-off acts on it",
}

// TestEveryFieldCrossesThePipe sets every field of a Record (its Result
// included), a Sample with its ProbeCounts, and a Send, by reflection, to a
// value of its own, round-trips them through the framing and fails on any
// field lost: a field added to prober.Result or record.Sample that works in
// process and is silently dropped in worker mode is caught here.
func TestEveryFieldCrossesThePipe(t *testing.T) {
	var rec Record
	fill(t, reflect.ValueOf(&rec).Elem(), "")
	var s Sample
	fill(t, reflect.ValueOf(&s).Elem(), "")
	var send Send
	fill(t, reflect.ValueOf(&send).Elem(), "")

	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	if err := enc.EncodeRecord(&rec); err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeSample(&s); err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeSend(send); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	var gotRec Record
	var gotS Sample
	var gotSend Send
	for _, decode := range []func() error{
		func() error { return dec.DecodeRecord(&gotRec) },
		func() error { return dec.DecodeSample(&gotS) },
		func() error { var err error; gotSend, err = dec.DecodeSend(); return err },
	} {
		if _, err := dec.Next(); err != nil {
			t.Fatal(err)
		}
		if err := decode(); err != nil {
			t.Fatal(err)
		}
	}
	compare(t, reflect.ValueOf(rec), reflect.ValueOf(gotRec), "")
	compare(t, reflect.ValueOf(s), reflect.ValueOf(gotS), "")
	compare(t, reflect.ValueOf(send), reflect.ValueOf(gotSend), "")
}

// fill gives every field a non-zero value valid for its type: 1 for small
// enumerations, distinct numbers otherwise, one element for slices.
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	n := 0
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		n++
		switch v.Type() {
		case reflect.TypeOf(prober.Outcome(0)), reflect.TypeOf(prober.RetryReason(0)):
			v.SetUint(1)
			return
		case reflect.TypeOf(time.Duration(0)):
			v.SetInt(int64(1000 + n))
			return
		}
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), join(path, v.Type().Field(i).Name))
			}
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			walk(v.Index(0), path+"[0]")
		case reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(int64(n))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.SetUint(uint64(n))
		case reflect.Float64, reflect.Float32:
			v.SetFloat(float64(n) + 0.5)
		case reflect.String:
			v.SetString("set")
		default:
			t.Fatalf("%s: a %s field; teach this test (and the framing) about it", path, v.Kind())
		}
	}
	walk(v, path)
}

func compare(t *testing.T, want, got reflect.Value, path string) {
	t.Helper()
	if why, ok := workerLocal[path]; ok {
		if !got.IsZero() {
			t.Errorf("%s crossed the pipe, but is listed as worker-local (%s)", path, why)
		}
		return
	}
	switch want.Kind() {
	case reflect.Struct:
		for i := 0; i < want.NumField(); i++ {
			compare(t, want.Field(i), got.Field(i), join(path, want.Type().Field(i).Name))
		}
	case reflect.Slice:
		if got.Len() != want.Len() {
			t.Errorf("%s: %d elements after the pipe, want %d", path, got.Len(), want.Len())
			return
		}
		for i := 0; i < want.Len(); i++ {
			compare(t, want.Index(i), got.Index(i), path+"[0]")
		}
	default:
		if !reflect.DeepEqual(want.Interface(), got.Interface()) {
			t.Errorf("%s: %v after the pipe, want %v: the framing drops it (carry it, or list it in workerLocal with why)", path, got.Interface(), want.Interface())
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
