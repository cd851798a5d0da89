package jsontext

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// validate skips one whole document.
func validate(doc []byte) error {
	var s Scanner
	s.Reset(doc)
	s.Skip()
	s.End()
	return s.Err()
}

func TestValidateAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `-12E+4`, `true`, `false`, `null`,
		` {"a" : [1, {"b":null}, "x\"y\\z\u00e9\ud83d\ude00"] } `,
		`{"a":1,}`, `{"a":1 "b":2}`, `{,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a"}`, `{"a":}`, `{a:1}`,
		`01`, `1.`, `.5`, `1e`, `1e+`, `-`, `+1`, `0x10`, `NaN`, `Infinity`, `tru`, `nul`, `truex`,
		`"abc`, "\"a\x01b\"", `"\x"`, `"\u12"`, `"\u12g4"`, `{"a":1}}`, `{"a":1} x`, ``, `   `,
		`[[[[]]]]`, `{"a":{"b":{"c":[]}}}`, "\"\xff\xfe\"",
	}
	for _, d := range docs {
		got := validate([]byte(d)) == nil
		if want := json.Valid([]byte(d)); got != want {
			t.Errorf("%q: valid %v, encoding/json says %v", d, got, want)
		}
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	err := validate([]byte(`{"a":1,"b":tru}`))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) || e.Offset != 11 {
		t.Fatalf("error %v, want ErrSyntax at offset 11", err)
	}
	if strings.Contains(err.Error(), "tru") {
		t.Errorf("error %q quotes the document", err)
	}
}

func TestDepthIsBounded(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+10) + strings.Repeat("]", MaxDepth+10)
	if err := validate([]byte(deep)); !errors.Is(err, ErrSyntax) {
		t.Fatalf("nesting %d deep: error %v, want ErrSyntax", MaxDepth+10, err)
	}
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if err := validate([]byte(ok)); err != nil {
		t.Fatalf("nesting %d deep: %v", MaxDepth, err)
	}
}

type member struct {
	key, str string
	raw      string
}

// members reads an object's members: strings as strings, anything else raw.
func members(doc string) ([]member, error) {
	var s Scanner
	s.Reset([]byte(doc))
	var out []member
	for more := s.Object(); more; more = s.NextMember() {
		m := member{key: string(s.Key())}
		if s.Peek() == String {
			m.str = s.String()
		} else {
			m.raw = string(s.Raw())
		}
		out = append(out, m)
	}
	s.End()
	return out, s.Err()
}

func TestObjectMembers(t *testing.T) {
	got, err := members(`{"id":"obs-1", "n" : -1.5e2,"o":{"x":[1,"]"]},"e":"a\nb\u00e9","k\u0069":null}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []member{
		{key: "id", str: "obs-1"}, {key: "n", raw: "-1.5e2"}, {key: "o", raw: `{"x":[1,"]"]}`},
		{key: "e", str: "a\nbé"}, {key: "ki", raw: "null"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d members %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("member %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestNullIsAbsent(t *testing.T) {
	var s Scanner
	for _, read := range []func() bool{
		func() bool { return s.Object() },
		func() bool { return s.Array() },
		func() bool { return s.String() != "" },
	} {
		s.Reset([]byte(` null `))
		if read() {
			t.Error("null read as present")
		}
		s.End()
		if err := s.Err(); err != nil {
			t.Errorf("null: %v", err)
		}
	}
}

func TestShapeErrorKeepsScanning(t *testing.T) {
	var s Scanner
	// "a" should be a string; the document is otherwise valid.
	s.Reset([]byte(`{"a":{"x":1},"b":"y"}`))
	var b string
	for more := s.Object(); more; more = s.NextMember() {
		switch string(s.Key()) {
		case "a":
			_ = s.String()
		case "b":
			b = s.String()
		default:
			s.Skip()
		}
	}
	s.End()
	if err := s.Err(); !errors.Is(err, ErrShape) {
		t.Fatalf("error %v, want ErrShape", err)
	}
	if b != "y" {
		t.Errorf("b = %q after the shape error, want the scan to go on", b)
	}

	// A syntax error later in the document wins over the shape error.
	s.Reset([]byte(`{"a":{"x":1},"b":"y",}`))
	for more := s.Object(); more; more = s.NextMember() {
		s.Key()
		_ = s.String()
	}
	s.End()
	if err := s.Err(); !errors.Is(err, ErrSyntax) {
		t.Fatalf("error %v, want ErrSyntax", err)
	}
}

func TestStringsAliasTheDocument(t *testing.T) {
	doc := []byte(`{"id":"abc"}`)
	got, err := members(string(doc))
	if err != nil || got[0].str != "abc" {
		t.Fatal(got, err)
	}
	var s Scanner
	s.Reset(doc)
	s.Object()
	s.Key()
	v := s.String()
	doc[8] = 'X'
	if v != "aXc" {
		t.Errorf("string %q does not alias the document", v)
	}
}

func FuzzValidate(f *testing.F) {
	for _, d := range []string{`{"a":[1,2,{"b":"c\u00e9"}]}`, `[1e5,-0.5,true,false,null]`, `"\ud83d\ude00"`, `{"a":1,}`} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if got, want := validate(doc) == nil, json.Valid(doc); got != want {
			t.Fatalf("valid %v, encoding/json says %v", got, want)
		}
	})
}

func FuzzString(f *testing.F) {
	for _, d := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800x"`, `"\ud800\u0041"`} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !utf8.Valid(doc) {
			return // encoding/json rewrites invalid UTF-8; the scanner keeps bytes
		}
		var want string
		jerr := json.Unmarshal(doc, &want)
		var s Scanner
		s.Reset(doc)
		got := s.String()
		s.End()
		err := s.Err()
		if (err == nil) != (jerr == nil) {
			// A non-string value is a shape error here and a type error
			// there; both fail.
			t.Fatalf("error %v, encoding/json %v", err, jerr)
		}
		if err == nil && got != want {
			t.Fatalf("got %q, encoding/json %q", got, want)
		}
	})
}

// TestStringEndsAtEveryOffset: wherever in an eight-byte word a string's
// first quote, backslash or control character falls, and whatever plain
// bytes (ASCII, DEL, UTF-8) come before it, the scanner ends or fails the
// string where encoding/json does.
func TestStringEndsAtEveryOffset(t *testing.T) {
	valid := 0
	for _, filler := range []string{"a", "\x7f", "é", " "} {
		for _, special := range []string{`"`, `\n"`, `\u0041"`, "\x01\"", "\x1f\"", `\"x"`} {
			for n := range 20 {
				body := strings.Repeat(filler, n)
				// A member after it gives the word reads bytes past the
				// string's end to look at.
				doc := []byte(`{"k":"` + body + special + `,"tail":"0123456789abcdef"}`)
				var want map[string]any
				jerr := json.Unmarshal(doc, &want)
				var s Scanner
				s.Reset(doc)
				var got string
				for more := s.Object(); more; more = s.NextMember() {
					if string(s.Key()) == "k" {
						got = s.String()
					} else {
						s.Skip()
					}
				}
				s.End()
				err := s.Err()
				if (err == nil) != (jerr == nil) {
					t.Fatalf("%q: error %v, encoding/json %v", doc, err, jerr)
				}
				if err == nil {
					valid++
				}
				if err == nil && got != want["k"] {
					t.Fatalf("%q: got %q, encoding/json %q", doc, got, want["k"])
				}
			}
		}
	}
	if valid != 4*4*20 {
		t.Fatalf("%d documents valid, want %d: the cases test less than they say", valid, 4*4*20)
	}
}

// TestOnce: a name marked twice in one object is an ErrDuplicate (RFC 8259
// §4, FHIR R4 JSON: names unique), which does not stop the scan, and a
// syntax error found later wins over it.
func TestOnce(t *testing.T) {
	read := func(doc string) error {
		var s Scanner
		s.Reset([]byte(doc))
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			switch string(s.Key()) {
			case "a":
				s.Once(&seen, 1)
				s.Skip()
			case "b":
				s.Once(&seen, 2)
				s.Skip()
			default:
				s.Skip()
			}
		}
		s.End()
		return s.Err()
	}
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{name: "distinct names", doc: `{"a":1,"b":2,"c":3,"c":4}`},
		{name: "a twice", doc: `{"a":1,"b":2,"a":1}`, want: ErrDuplicate},
		{name: "b twice with equal values", doc: `{"b":{},"b":{}}`, want: ErrDuplicate},
		{name: "syntax error after a duplicate wins", doc: `{"a":1,"a":1,`, want: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := read(tt.doc)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}
