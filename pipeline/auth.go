package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AuthorizationError is a request the cluster refused for want of an ACL,
// with the resource it was refused on and what to grant. Retrying cannot fix
// it, so a runner that meets one stops and Run returns it. It wraps the
// broker's error: errors.Is(err, kerr.TopicAuthorizationFailed) and the like
// hold.
type AuthorizationError struct {
	// Resource is the ACL resource type: "topic", "group", "transactional
	// id" or "cluster".
	Resource string
	// Name is the resource's name; empty for the cluster.
	Name string
	// Operation is the refused operation, as ACLs name it: READ, WRITE,
	// DESCRIBE, CREATE.
	Operation string
	// Grant is what to grant the principal (an operation, on what).
	Grant string
	Err   error
}

func (e *AuthorizationError) Error() string {
	code := "authorization failed"
	var ke *kerr.Error
	if errors.As(e.Err, &ke) {
		code = ke.Message
	}
	what := e.Resource
	if e.Name != "" {
		what += " " + e.Name
	}
	verb := "use"
	if e.Resource == "topic" {
		verb = verbOf(e.Operation)
	}
	return fmt.Sprintf("not authorized to %s %s (%s): grant %s to this principal", verb, what, code, e.Grant)
}

func (e *AuthorizationError) Unwrap() error { return e.Err }

func verbOf(op string) string {
	switch op {
	case "WRITE":
		return "write to"
	case "READ":
		return "read"
	case "DESCRIBE":
		return "describe"
	case "CREATE":
		return "create"
	}
	return "use"
}

// authzError names the resource of an authorization failure the runner met
// while doing op (an ACL operation) on topic; topic is empty where no topic
// was involved. Errors that are no authorization failure, or that already
// name their resource, come back as they are.
func (r *Runner) authzError(err error, topic, op string) error {
	var named *AuthorizationError
	if errors.As(err, &named) {
		return err
	}
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed) && topic != "":
		return &AuthorizationError{Resource: "topic", Name: topic, Operation: op, Grant: op + " on it", Err: err}
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return &AuthorizationError{Resource: "group", Name: r.spec.Group, Operation: "READ", Grant: "READ on it", Err: err}
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		// Without a stable instance id the id ends in a random suffix, so
		// the grant that survives a restart is on the prefix.
		return &AuthorizationError{
			Resource: "transactional id", Name: r.txnID, Operation: "WRITE", Err: err,
			Grant: fmt.Sprintf("WRITE on TransactionalId %s, or on the prefix %s- (PREFIXED),", r.txnID, r.spec.Group),
		}
	}
	return err
}

// topicsAuthzError explains an ensureTopics failure for want of a topic ACL.
// kadm reports the refusal for its request as a whole, so the topics are
// described again, one by one in a raw request, to name those refused. When
// every topic is visible, the refusal was creating a missing one.
func (r *Runner) topicsAuthzError(ctx context.Context, cl *kgo.Client, err error) error {
	if !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return err
	}
	specs := r.spec.Topics()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range specs {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t.Name)
		req.Topics = append(req.Topics, rt)
	}
	resp, rerr := req.RequestWith(ctx, cl)
	if rerr != nil {
		return err
	}
	denied := make(map[string]bool)
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == kerr.TopicAuthorizationFailed.Code {
			denied[*t.Topic] = true
		}
	}
	var errs []error
	for _, t := range specs {
		if denied[t.Name] {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", r.spec.Name, &AuthorizationError{
				Resource: "topic", Name: t.Name, Operation: "DESCRIBE", Grant: grantOf(t.Kind), Err: kerr.TopicAuthorizationFailed,
			}))
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: grant CREATE on the missing topics (or on the cluster) to this principal, or create them beforehand (carepipe topics apply)", err)
	}
	return errors.Join(errs...)
}

// grantOf is what a pipeline needs on a topic of kind, which implies
// DESCRIBE.
func grantOf(kind TopicKind) string {
	switch kind {
	case TopicInput, TopicGlobal:
		return "READ on it"
	case TopicOutput, TopicError:
		return "WRITE on it"
	}
	// Changelogs are written, then read back on restore; repartition
	// topics are written, then consumed.
	return "READ and WRITE on it"
}
