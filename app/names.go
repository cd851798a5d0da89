package app

import (
	"errors"

	"github.com/carepipe/carepipe/pipeline/catalog"
)

// validateNames reports a malformed app id, and every renamed topic that
// is not a pipeline's or not a name Kafka accepts, each by its file key
// (appId, topics.<pipeline>.<topic>).
func (c *Config) validateNames() []error {
	s := catalog.Settings{AppID: c.AppID, Topics: c.Topics}
	var errs []error
	for _, err := range Mistakes(s.Check()) {
		var re *catalog.RenameError
		switch {
		case errors.As(err, &re) && re.Topic != "":
			errs = append(errs, c.keyErr("topics."+re.Pipeline+"."+re.Topic, re.Err))
		case errors.As(err, &re):
			errs = append(errs, c.keyErr("topics."+re.Pipeline, re.Err))
		default:
			errs = append(errs, c.keyErr("appId", err))
		}
	}
	if len(c.Topics) > 0 && c.Embedded() {
		errs = append(errs, c.keyErr("topics", errors.New("renamed topics need a cluster (--brokers): the embedded demo's simulated world uses the built-in names")))
	}
	return errs
}
