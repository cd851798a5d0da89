package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// `carepipe rules check` reads a rules file with package rules alone: a
// valid file is summarised on stdout, an invalid one exits 1 with every
// problem and its line on stderr. The files are package rules' test data.
func TestRulesCheck(t *testing.T) {
	dir := filepath.Join("pipeline", "alerts", "rules", "testdata")
	tests := []struct {
		name       string
		file       string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{"valid", "rules_valid.yaml", 0, "rules_valid.yaml: 5 rules, NEWS2 on, all valid\n", nil},
		{"unknown key", "rules_unknown_key.yaml", 1, "", []string{
			"rules_unknown_key.yaml:2: rule is missing threshold",
			`rules_unknown_key.yaml:6: unknown key "treshold"`,
		}},
		{"missing file", "nope.yaml", 1, "", []string{"nope.yaml: reading rules:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"rules", "check", filepath.Join(dir, tt.file)}, &stdout, &stderr)
			if code != tt.wantCode || !strings.HasSuffix(stdout.String(), tt.wantStdout) || tt.wantStdout == "" && stdout.Len() > 0 {
				t.Errorf("exit %d, stdout %q; want %d, %q", code, stdout.String(), tt.wantCode, tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if tt.wantStderr == nil && stderr.Len() > 0 {
				t.Errorf("stderr %q", stderr.String())
			}
		})
	}
}
