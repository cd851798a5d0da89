package jsontext

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// stdJSON is v as encoding/json writes it with HTML escaping off.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f",
		"<html> & 'x'", "é 漢字 😀", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x80", "trail\xc3",
	} {
		if got, want := AppendString(nil, s), stdJSON(t, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, encoding/json %s", s, got, want)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 120, 98.6, 1e-6, 9.99e-7, 1e-7, 123456789, 1e20, 1e21, -1e21,
		1.5e300, 5e-324, math.MaxFloat64, 0.000001234, 1e12, 18.016 * 5.5,
	} {
		if got, want := AppendFloat(nil, f), stdJSON(t, f); !bytes.Equal(got, want) {
			t.Errorf("%v: got %s, encoding/json %s", f, got, want)
		}
	}
	if got := string(AppendFloat(nil, math.NaN())); got != "null" {
		t.Errorf("NaN: got %s, want null", got)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"a\"b", "\u2028", "\xff", "😀\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), stdJSON(t, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 1e-7, 1e21, 123.456} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		if got, want := AppendFloat(nil, v), stdJSON(t, v); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, encoding/json %s", v, got, want)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	ss := []string{"obs-7-1234-heart-rate-high", "2025-01-01T00:00:01Z", "Elevated heart rate", "pat-000013", "James Peter Chalmers", "8867-4"}
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = buf[:0]
		for _, s := range ss {
			buf = AppendString(buf, s)
		}
	}
}

// TestAppendStringEscapesAtEveryOffset: wherever in an eight-byte word a
// byte that needs escaping or UTF-8 checking falls, the string is written
// as encoding/json writes it.
func TestAppendStringEscapesAtEveryOffset(t *testing.T) {
	for _, special := range []string{`"`, `\`, "\x00", "\x1f", "é", "\u2028", "\xff", "😀"} {
		for n := range 20 {
			for _, tail := range []string{"", "abcdefghij"} {
				s := strings.Repeat("a", n) + special + tail
				if got, want := AppendString(nil, s), stdJSON(t, s); !bytes.Equal(got, want) {
					t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
				}
			}
		}
	}
}
