package datasync

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"
)

// ourCompatibility is the compatibility level carepipe wants on the subjects
// of its canonical schemas: a consumer with carepipe's newest schema reads
// every record still on the topic ([checkBackward] is carepipe's own check
// of it, done whatever the registry's level).
const ourCompatibility = sr.CompatBackward

// strictness places a compatibility level on two axes: how many earlier
// versions a new one must be able to read (backward) and how many must be
// able to read it (forward), 0 none, 1 the latest, 2 all of them. A level
// is at least as strict as another when it is on both axes: so NONE is the
// loosest, FULL_TRANSITIVE the strictest, a *_TRANSITIVE level stricter
// than its plain one, and BACKWARD and FORWARD (or BACKWARD_TRANSITIVE and
// FULL) not comparable at all.
func strictness(l sr.CompatibilityLevel) (backward, forward int) {
	switch l {
	case sr.CompatBackward:
		return 1, 0
	case sr.CompatBackwardTransitive:
		return 2, 0
	case sr.CompatForward:
		return 0, 1
	case sr.CompatForwardTransitive:
		return 0, 2
	case sr.CompatFull:
		return 1, 1
	case sr.CompatFullTransitive:
		return 2, 2
	}
	return 0, 0 // NONE
}

// atLeastAsStrict reports whether level a refuses every schema change that
// level b refuses.
func atLeastAsStrict(a, b sr.CompatibilityLevel) bool {
	ab, af := strictness(a)
	bb, bf := strictness(b)
	return ab >= bb && af >= bf
}

// subjectLevel is the compatibility level carepipe sets on a subject it
// creates: [ourCompatibility] where that is stricter than what the subject
// has now (its own level or, without one, the registry's global level) and
// at least as strict as the global one; otherwise none, and the subject
// keeps what it has. A registry run with FULL globally so keeps FULL on
// carepipe's subjects rather than getting BACKWARD; one with FORWARD keeps
// FORWARD (BACKWARD is no stricter, only different), and carepipe's own
// backward check still applies to every schema it registers.
type subjectLevel struct {
	global, current sr.CompatibilityLevel
	set             bool
}

func (l subjectLevel) String() string {
	if l.set {
		return fmt.Sprintf("compatibility %s set on the subject, stricter than the registry's %s", ourCompatibility, l.current)
	}
	if l.current != l.global {
		return fmt.Sprintf("compatibility %s already set on the subject", l.current)
	}
	return fmt.Sprintf("compatibility %s from the registry's global level", l.current)
}

func decideLevel(global, current sr.CompatibilityLevel) subjectLevel {
	l := subjectLevel{global: global, current: current}
	l.set = atLeastAsStrict(ourCompatibility, global) &&
		atLeastAsStrict(ourCompatibility, current) && ourCompatibility != current
	return l
}

// readLevel reads the registry's global compatibility level and subject's
// own, which is the global one where the subject has none.
func readLevel(ctx context.Context, cl *sr.Client, subject string) (subjectLevel, error) {
	res := cl.Compatibility(ctx, sr.GlobalSubject, subject)
	if err := res[0].Err; err != nil {
		return subjectLevel{}, fmt.Errorf("schema registry: reading the global compatibility level: %w", err)
	}
	global, current := res[0].Level, res[0].Level
	var re *sr.ResponseError
	switch err := res[1].Err; {
	case err == nil:
		current = res[1].Level
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		// No level of its own (Confluent answers 40408, or 40401 for a
		// subject it has never seen): the global one applies.
	default:
		return subjectLevel{}, fmt.Errorf("schema registry: reading the compatibility level of %s: %w", subject, err)
	}
	return decideLevel(global, current), nil
}
