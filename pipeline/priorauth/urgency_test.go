package priorauth

import "testing"

// Issue 18: urgency is matched on a normalized list (case, spaces and
// hyphens, plurals, synonyms as entries), not one exact string.
func TestUrgentCategories(t *testing.T) {
	def := DefaultConfig()
	custom := DefaultConfig()
	custom.UrgentCategories = []string{"Antiepileptics", "immune globulin"}
	for _, tt := range []struct {
		name     string
		c        *Config
		category string
		urgent   bool
	}{
		{"exact", &def, "insulin", true},
		{"case and spaces", &def, "  ANTIBIOTIC ", true},
		{"plural", &def, "Antibiotics", true},
		{"plural of a list entry in two words", &def, "Blood Thinners", true},
		{"hyphen and plural", &def, "anti-coagulants", true},
		{"underscore", &def, "BLOOD_THINNER", true},
		{"synonym", &def, "antibacterials", true},
		{"synonym with a hyphen", &def, "Anti-infective", true},
		{"insulins", &def, "Insulins", true},
		{"a longer name is another category", &def, "antibiotic-like", false},
		{"not urgent", &def, "statins", false},
		{"empty", &def, "", false},
		{"punctuation alone", &def, " - ", false},
		{"configured list, singular of a plural entry", &custom, "antiepileptic", true},
		{"configured list, plural", &custom, "Immune Globulins", true},
		{"configured list replaces the built-in one", &custom, "insulin", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.urgent(tt.category); got != tt.urgent {
				t.Errorf("urgent(%q) = %v, want %v (key %q)", tt.category, got, tt.urgent, categoryKey(tt.category))
			}
		})
	}
}

func TestCategoryKey(t *testing.T) {
	for in, want := range map[string]string{
		"Antibiotics":       "antibiotic",
		"therapies":         "therapy",
		"Blood-Thinners":    "bloodthinner",
		"sinus":             "sinus",
		"prophylaxis":       "prophylaxis",
		"glass":             "glass",
		"GLP-1 agonists":    "glp1agonist",
		"ACE inhibitors":    "aceinhibitor",
		"  anti_coagulant ": "anticoagulant",
	} {
		if got := categoryKey(in); got != want {
			t.Errorf("CategoryKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigRefusesAnEmptyUrgentCategory(t *testing.T) {
	c := DefaultConfig()
	c.UrgentCategories = append(c.UrgentCategories, " - ")
	if _, err := New(WithConfig(c)); err == nil {
		t.Fatal("an urgent category that normalizes to nothing was accepted")
	}
}
