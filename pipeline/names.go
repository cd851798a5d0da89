package pipeline

import (
	"fmt"
	"strings"
)

// Names is how one deployment names a pipeline's group and topics, so that
// several deployments (production and staging, two teams) share a cluster
// without sharing a consumer group, a changelog or a transactional id:
//
//   - AppID, when set, prefixes the pipeline's group as "<AppID>-<group>".
//     The changelogs, repartition topics and transactional ids all derive
//     from the group (see [Spec.Group]), so they follow. Empty keeps the
//     built-in group, and with it every name a running deployment has:
//     changing a group id starts the group over (no committed offsets) and
//     its changelogs over (no state).
//   - Topics renames the pipeline's input, output, error and global-table
//     topics, from their built-in names to the deployment's.
//
// A use-case package takes Names as an option, uses [Names.Group] and
// [Names.Topic] in its [Spec], renames what it emits with [Names.Topic],
// and reads a consumed record's topic with [Names.Default], so that its
// processing keeps working with the built-in names. The zero Names is the
// built-in naming.
type Names struct {
	AppID  string
	Topics map[string]string
}

// Group is the group id of the built-in group g.
func (n Names) Group(g string) string {
	if n.AppID == "" {
		return g
	}
	return n.AppID + "-" + g
}

// Topic is the deployment's name of the built-in topic t.
func (n Names) Topic(t string) string {
	if v, ok := n.Topics[t]; ok && v != "" {
		return v
	}
	return t
}

// Default is the built-in name of the deployment's topic t: the inverse of
// [Names.Topic].
func (n Names) Default(t string) string {
	for from, to := range n.Topics {
		if to == t {
			return from
		}
	}
	return t
}

// Validate reports a malformed app id or topic name. Which topics a
// pipeline may rename is its own to check (see the catalog).
func (n Names) Validate() error {
	if n.AppID != "" {
		if err := checkName(n.AppID, maxAppID); err != nil {
			return fmt.Errorf("app id %q: %w", n.AppID, err)
		}
	}
	seen := make(map[string]string, len(n.Topics))
	for from, to := range n.Topics {
		if err := checkName(to, maxTopicName); err != nil {
			return fmt.Errorf("topic %s renamed to %q: %w", from, to, err)
		}
		if other, ok := seen[to]; ok {
			return fmt.Errorf("topics %s and %s are both renamed to %s", min(from, other), max(from, other), to)
		}
		seen[to] = from
	}
	return nil
}

// maxTopicName is Kafka's limit on a topic name; maxAppID leaves room
// under it for the longest internal topic carepipe derives from a group.
const (
	maxTopicName = 249
	maxAppID     = 100
)

// checkName is nil for a name Kafka accepts as a topic, group or
// transactional id part: letters, digits, '.', '_' and '-', not "." or
// "..".
func checkName(s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > limit:
		return fmt.Errorf("longer than %d characters", limit)
	case s == "." || s == "..":
		return fmt.Errorf("not a name")
	case strings.IndexFunc(s, func(r rune) bool {
		return !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0:
		return fmt.Errorf("use letters, digits, '.', '_' and '-' only")
	}
	return nil
}

// String is the kind's role, as describing a pipeline names it: input,
// output, error, global, changelog or repartition.
func (k TopicKind) String() string {
	switch k {
	case TopicInput:
		return "input"
	case TopicOutput:
		return "output"
	case TopicError:
		return "error"
	case TopicGlobal:
		return "global"
	case TopicChangelog:
		return "changelog"
	case TopicRepartition:
		return "repartition"
	}
	return fmt.Sprintf("TopicKind(%d)", int(k))
}
