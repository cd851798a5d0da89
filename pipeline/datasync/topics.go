package datasync

import "time"

// Names of the pipelines, their groups and shared topics.
const (
	// Name is the pipeline's name, as --pipelines says it; each stage
	// has its own name below.
	Name                = "datasync"
	NameCDC             = "datasync_cdc"
	NameValidation      = "datasync_validation"
	NameReconciliation  = "datasync_reconciliation"
	GroupCDC            = "healthcare-data-sync-cdc"
	GroupValidation     = "healthcare-data-sync-validation"
	GroupReconciliation = "healthcare-data-sync-reconciliation"
	TopicErrors         = "data.sync.errors"

	// EventSourceValidation and EventSourceReconciliation are the
	// event-source of the stages' outputs; the CDC stage's is
	// cdc-<source system>, as in the seed.
	EventSourceValidation     = "data-validation"
	EventSourceReconciliation = "data-reconciliation"

	// Stores.
	StoreEntities   = "entities"   // validation: resolution state per entity
	StoreAggregates = "aggregates" // reconciliation: the read model per entity
	StoreTimers     = "timers"     // reconciliation: overdue deadlines

	// Repartition topics' names.
	RepartitionByEntity = "by-entity"

	// Headers of the canonical topics (the seed's), and the one that
	// carries an acknowledgement's target through a repartition.
	HeaderSourceSystem     = "source-system"
	HeaderEntityType       = "entity-type"
	HeaderOperationType    = "operation-type"
	HeaderConflictResolved = "conflict-resolved"
	headerSyncTarget       = "sync-target"
)

// SourceTopics are the CDC stage's inputs with the built-in sources
// ([DefaultSources]); [WithSources] configures others.
func SourceTopics() []string { return DefaultSources().topicNames() }

// TargetTopic is the topic on which target system t acknowledges.
func TargetTopic(t string) string { return "target." + t + ".sync.completed" }

// DefaultTargets are the target systems every entity type expects
// acknowledgements from by default.
func DefaultTargets() []string { return []string{"ehr", "pharmacy", "portal"} }

// DefaultReconcileDeadline is how long a validated version may stay
// unacknowledged before reconciliation.<entity>.overdue.
const DefaultReconcileDeadline = 5 * time.Minute
