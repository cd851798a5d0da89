package priorauth

// Names of the pipeline, its group, topics, store and repartition topic.
const (
	Name  = "priorauth"
	Group = "prior-auth-orchestrator"

	TopicPrescriptions          = "medication.prescription.new"
	TopicDocumentationAssembled = "priorauth.documentation.assembled"
	TopicSubmissionCompleted    = "priorauth.submission.completed"
	TopicDeterminationReceived  = "priorauth.determination.received"
	TopicCommunicationCompleted = "priorauth.communication.completed"
	TopicDocumentationRequested = "priorauth.documentation.requested"
	TopicSubmissionRequested    = "priorauth.submission.requested"
	TopicStatusCheckRequested   = "priorauth.status.check.requested"
	TopicCommunicationRequested = "priorauth.communication.requested"
	TopicWorkflowCompleted      = "priorauth.workflow.completed"
	TopicStatus                 = "priorauth.status"
	TopicSLABreached            = "priorauth.sla.breached"
	TopicErrors                 = "priorauth.errors"
	StorePriorAuths             = "priorauths"
	StoreTimers                 = "priorauth-timers"
	RepartitionByPriorAuth      = "prescriptions-by-priorauth"
	EventSource                 = "carepipe.priorauth"
	actor                       = "prior-auth-orchestrator"
)

// inputs are the topics the orchestrator consumes.
var inputs = []string{
	TopicPrescriptions, TopicDocumentationAssembled, TopicSubmissionCompleted,
	TopicDeterminationReceived, TopicCommunicationCompleted,
}

// outputs are the topics it produces to (the error topic aside).
var outputs = []string{
	TopicDocumentationRequested, TopicSubmissionRequested, TopicStatusCheckRequested,
	TopicCommunicationRequested, TopicWorkflowCompleted, TopicStatus, TopicSLABreached,
}
