package topics

import (
	"strconv"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
)

// An error topic is planned to hold its inputs' largest records whole, with
// room for the error headers, unless a topics file sets its limit itself.
func TestErrorTopicHoldsItsInputsRecords(t *testing.T) {
	specs := []pipeline.Spec{{Name: "p", Group: "g", Inputs: []string{"in", "in2"}, Outputs: []string{"out"}, ErrorTopic: "errs"}}
	big := func(n int) string { return strconv.Itoa(n + pipeline.ErrorHeadersHeadroom) }
	for _, tc := range []struct {
		name     string
		defaults string // the layout's max.message.bytes
		file     string
		want     string // the error topic's max.message.bytes
	}{
		{name: "the seed's layout: carepipe's own", defaults: "1000000", want: "4194304"},
		{name: "larger defaults", defaults: "8388608", want: big(8388608)},
		{name: "one input larger in the file", defaults: "1000000",
			file: "topics:\n  - name: in2\n    configs: {max.message.bytes: \"16777216\"}\n", want: big(16777216)},
		{name: "the file sets the error topic's limit", defaults: "1000000",
			file: "topics:\n  - name: in\n    configs: {max.message.bytes: \"8388608\"}\n  - name: errs\n    configs: {max.message.bytes: \"2000000\"}\n", want: "2000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := SeedDefaults()
			d.Configs["max.message.bytes"] = tc.defaults
			got := Desired(specs, d)
			if tc.file != "" {
				f, err := LoadFile(writeFile(t, tc.file))
				if err != nil {
					t.Fatal(err)
				}
				if got, err = f.Override(specs, got, d); err != nil {
					t.Fatal(err)
				}
			}
			for _, tp := range got {
				if tp.Name == "errs" && tp.Configs["max.message.bytes"] != tc.want {
					t.Errorf("error topic's max.message.bytes %s, want %s", tp.Configs["max.message.bytes"], tc.want)
				}
			}
		})
	}
}
