package alerts

import "github.com/twmb/franz-go/pkg/kgo"

// handle is process without the runtime: decode, evaluate and apply one
// observation record against the patient's state prev, with no
// repartitioning (r is taken to be on the partition that owns its patient)
// and no metrics: the tests' and benchmarks' way to the processing core.
func (p *Processor) handle(r *kgo.Record, patients patientLookup, prev []byte) (outcome, error) {
	in := inputPool.Get().(*input)
	defer releaseInput(in)
	if err := p.decode(r, in); err != nil {
		return outcome{}, err
	}
	f := &in.findings
	if err := p.rules.evaluate(&in.Observation, f); err != nil {
		return outcome{}, err
	}
	if !f.needsState(prev, in.Observation.ID) {
		return outcome{}, nil
	}
	var out outcome
	p.apply(in, f, nil, patients, prev, &out)
	return out, nil
}
