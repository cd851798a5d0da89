// Package app assembles carepipe from a Config: the Kafka connection (a real
// cluster, or an embedded kfake one with the simulated world and demo
// traffic), the pipelines, the HTTP endpoints and the live summary; the
// scenario tests build the same pipelines with the same constructors.
//
// Where the configuration comes from is here too, so that main.go is
// wiring only: configure.go has one function per command (ConfigureRun,
// ConfigureTopics, ConfigureLoadgen, ConfigureOps) that defines its flags
// and layers the config file, the environment and the flags, each over the
// one before; settings.go is the table of the cluster connection's
// settings (file key, variable, flag), which every command shares;
// flags.go is the help and the flag mistakes as the README writes them.
// The environment is a parameter (LookupEnv): main passes os.LookupEnv,
// the tests a map.
package app
