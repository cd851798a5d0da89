package app

import (
	"errors"
	"fmt"
	"strings"
)

// The values of Config.Demo (demo.mode, CAREPIPE_DEMO, --demo).
const (
	DemoAuto = "auto"
	DemoOn   = "on"
	DemoOff  = "off"
)

// demoNote is what /readyz adds to its body while the embedded demo runs,
// so that nobody takes a demo for a deployment that works.
const demoNote = "embedded demo: in-process Kafka and simulated traffic, not for production"

// demoHowTo says how to run the demo, for the error of a process given
// no brokers that may not start it.
const demoHowTo = "carepipe run --demo (in a container: docker run --rm -p 8080:8080 -e CAREPIPE_API_TOKEN=dev carepipe run --demo --http 0.0.0.0:8080)"

// ParseDemo reads a demo mode: auto, on or off; true and false (what a
// bare --demo flag sets) mean on and off. Case does not count.
func ParseDemo(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", DemoAuto:
		return DemoAuto, nil
	case DemoOn, "true":
		return DemoOn, nil
	case DemoOff, "false":
		return DemoOff, nil
	}
	return "", fmt.Errorf("%q: want auto, on or off", v)
}

// CheckDemo is nil when the demo mode and the brokers agree: the demo runs
// when there are no brokers and the mode is auto or on, a real cluster
// when there are brokers and the mode is auto or off. A container image
// sets off, so that a deployment that lost its brokers setting stops with
// this error rather than running simulated traffic that looks healthy.
func (c *Config) CheckDemo() error {
	mode, err := ParseDemo(c.Demo)
	if err != nil {
		return c.keyErr("demo.mode", err)
	}
	switch {
	case mode == DemoOff && len(c.Brokers) == 0:
		by := ""
		if o := c.origin("demo.mode"); o != "" {
			by = " by " + o
		}
		return c.keyErr("brokers", fmt.Errorf("no Kafka brokers, and the embedded demo is turned off%s: set KAFKA_BROKERS (or --brokers, or brokers in the config file); or run the embedded demo with: %s", by, demoHowTo))
	case mode == DemoOn && len(c.Brokers) > 0:
		return c.keyErr("demo.mode", errors.New("on runs the embedded demo, which starts its own Kafka: leave the brokers out, or the demo off"))
	}
	return nil
}
