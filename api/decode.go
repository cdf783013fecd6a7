package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// jsonProblem says in the API's terms (JSON field names and types, not Go
// struct and type names) why obj, a JSON object, did not decode into v.
func jsonProblem(err error, obj []byte, v any) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("%s where %s is expected", article(te.Value), expected(te.Type))
		}
		return fmt.Sprintf("field %q: %s where %s is expected", te.Field, article(te.Value), expected(te.Type))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of the body: the JSON object is incomplete"
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return msg
	}
	// Errors of a field's own decoding (base64, a user ID, a role) do not
	// name the field: find it by decoding the fields one at a time.
	if f := failingField(obj, v); f != "" {
		if strings.HasPrefix(msg, "illegal base64 data") {
			msg = "not valid base64 (standard alphabet, = padding): " + msg
		}
		return fmt.Sprintf("field %q: %s", f, msg)
	}
	return msg
}

// failingField returns the first top-level field of obj (in name order)
// that does not decode on its own into a fresh value of v's type.
func failingField(obj []byte, v any) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(obj, &fields) != nil {
		return ""
	}
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer {
		return ""
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	}) {
		one, _ := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		dec := json.NewDecoder(bytes.NewReader(one))
		if dec.Decode(reflect.New(t.Elem()).Interface()) != nil {
			return name
		}
	}
	return ""
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// expected names what JSON value a Go type takes.
func expected(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) || t.Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return expected(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}

// article puts "a" or "an" before a JSON value kind ("number", "array").
func article(kind string) string {
	switch {
	case kind == "":
		return "a value"
	case strings.ContainsRune("aeiou", rune(kind[0])):
		return "an " + kind
	}
	return "a " + kind
}
