package alerts

// The pipeline's names: topics, group, store and repartition. They are a
// contract with other systems (DESIGN.md, "Clinical alerts").
const (
	// Name is the pipeline's name in metrics (carepipe_alerts_...) and logs.
	Name = "alerts"
	// Group is the consumer group.
	Group = "clinical-alerts-stream-processor"

	// TopicObservations is the input: FHIR R4 Observations, enveloped or
	// bare, keyed by patient id where the producer can.
	TopicObservations = "fhir.Observation"
	// TopicPatients is the compacted FHIR R4 Patient topic, keyed by
	// patient id, held whole as a global table for enrichment.
	TopicPatients = "fhir.Patient"

	// TopicAlerts receives one [Alert] per rule that fires, keyed by patient
	// id.
	TopicAlerts = "clinical.alerts"
	// TopicHistory receives one [HistoryRecord] per alert: the channels
	// chosen, possibly none.
	TopicHistory = "clinical.notifications.history"
	// TopicMobile, TopicEmail and TopicSMS are the per-channel outboxes that
	// delivery gateways consume, one [Notification] per alert and channel.
	TopicMobile = "notifications.mobile"
	TopicEmail  = "notifications.email"
	TopicSMS    = "notifications.sms"
	// TopicErrors receives every record that could not be processed, whole.
	TopicErrors = "clinical.alerts.errors"

	// StorePatientAlerts holds, per patient id, the running alert count and
	// the most recent alert ids (the dedupe window).
	StorePatientAlerts = "patient-alerts"
	// RepartitionByPatient re-keys observations by patient id when they
	// arrive keyed otherwise, so that a patient's state has one owner.
	RepartitionByPatient = "observations-by-patient"
)

// Header values this pipeline writes on its outputs.
const (
	// EventSource is the event-source header of every output.
	EventSource = "carepipe.alerts"
	// EventTypeAlert, EventTypeHistory and EventTypeNotification are the
	// event-type headers of records on TopicAlerts, TopicHistory and the
	// channel outboxes.
	EventTypeAlert        = "ClinicalAlert"
	EventTypeHistory      = "NotificationHistory"
	EventTypeNotification = "NotificationRequested"
)

// outputs are the topics process emits to, in a stable order.
var outputs = []string{TopicAlerts, TopicHistory, TopicMobile, TopicEmail, TopicSMS}
