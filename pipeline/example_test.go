package pipeline_test

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// visitCounter is a Spec with one store: it counts the visits of each
// patient key and emits the running count. A record without a key is
// rejected, and so goes whole to the error topic in a running pipeline.
func visitCounter() pipeline.Spec {
	return pipeline.Spec{
		Name:       "visits",
		Group:      "visit-counter",
		Inputs:     []string{"visits"},
		Outputs:    []string{"visit-counts"},
		ErrorTopic: "visits-errors",
		Stores:     []string{"counts"},
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			if len(r.Key) == 0 {
				return pipeline.Reject(pipeline.TypeInvalid, errors.New("a visit needs a patient key"))
			}
			s := c.Store("counts")
			n := 0
			if v, ok := s.Get(string(r.Key)); ok {
				n, _ = strconv.Atoi(string(v))
			}
			n++
			count := []byte(strconv.Itoa(n))
			s.Put(string(r.Key), count)
			c.Emit(&kgo.Record{Topic: "visit-counts", Key: r.Key, Value: count})
			return nil
		},
	}
}

// A Spec is data; the Harness runs its Process through the runtime's task
// path, without Kafka, the way a test of a processor would.
func ExampleHarness() {
	h, err := pipeline.NewHarness(visitCounter())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, key := range []string{"p1", "p2", "p1"} {
		out, err := h.Process(&kgo.Record{Topic: "visits", Key: []byte(key)})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %s=%s\n", out[0].Topic, out[0].Key, out[0].Value)
	}
	// A rejected record leaves no state and emits nothing; its error is
	// the one the runtime would put in the error-type header.
	_, err = h.Process(&kgo.Record{Topic: "visits"})
	var re *pipeline.RecordError
	if errors.As(err, &re) {
		fmt.Println("error-type:", re.Type)
	}
	fmt.Println("patients counted:", h.Store("counts").Len())
	// Output:
	// visit-counts p1=1
	// visit-counts p2=1
	// visit-counts p1=2
	// error-type: invalid
	// patients counted: 2
}

// Everything a running Runner needs beyond the Spec comes as options; the
// Spec itself is checked by New.
func ExampleNew() {
	spec := visitCounter()
	spec.ErrorTopic = ""
	_, err := pipeline.New(spec)
	fmt.Println(err)
	// Output:
	// pipeline visits: missing ErrorTopic
}
