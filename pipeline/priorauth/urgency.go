package priorauth

import (
	"strings"
	"unicode"
)

// categoryKey is the key a medication category is matched on: lower case,
// split into words at spaces, hyphens, underscores, slashes and other
// punctuation, each word made singular, and the words joined with nothing
// between them. So "Anti-Coagulants", "anticoagulant" and " ANTICOAGULANTS "
// are one key, and "Blood thinners" is the key of "blood-thinner". A
// category of no letters or digits has the empty key, which matches
// nothing.
//
// Singular by the English rules that fit drug class names: -ies to -y
// (therapies), else a final -s dropped except after s, u or i
// (antibiotics, but not "-ss", "sinus" or "prophylaxis"). A plural in
// -es after s, x, z, ch or sh would miss its singular ("boxes" is
// "boxe"); drug class names are not of that kind, and a list entry can
// always be written as the plural.
func categoryKey(category string) string {
	words := strings.FieldsFunc(strings.ToLower(category), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	var b strings.Builder
	for _, w := range words {
		b.WriteString(singular(w))
	}
	return b.String()
}

func singular(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:len(w)-1]
	}
	return w
}
