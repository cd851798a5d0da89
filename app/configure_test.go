package app

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envOf is an environment of exactly m's variables, as os.LookupEnv reads
// the process's.
func envOf(m map[string]string) LookupEnv {
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok
	}
}

// runOptions are the options of run that TestConfigureRunPrecedence
// follows: one or more of each kind (string, duration, bool, list, the
// connection's, secrets), and where two of them came from.
type runOptions struct {
	InstanceID     string
	AdvertiseHTTP  string
	Demo           string
	SessionTimeout time.Duration
	CreateTopics   bool
	CarryHeaders   []string
	Brokers        []string
	Username       string
	SASLMechanism  string
	TLS            bool
	Password       string
	APIToken       string
	Level          slog.Level
	// BrokersFrom and SessionTimeoutFrom are the options' origins, as a
	// mistake in them names it.
	BrokersFrom, SessionTimeoutFrom string
}

func optionsOf(rs RunSetup) runOptions {
	c := rs.Config
	return runOptions{
		InstanceID: c.InstanceID, AdvertiseHTTP: c.AdvertiseHTTP, Demo: c.Demo, SessionTimeout: c.SessionTimeout, CreateTopics: c.CreateTopics, CarryHeaders: c.CarryHeaders,
		Brokers: c.Brokers, Username: c.Username, SASLMechanism: c.SASLMechanism, TLS: c.TLS, Password: c.Password, APIToken: c.APIToken,
		Level: rs.Level, BrokersFrom: c.Origin("brokers"), SessionTimeoutFrom: c.Origin("sessionTimeout"),
	}
}

// The configuration of run from a config file, the environment and the
// flags: each over the one before, option by option, for every kind of
// option; the mistakes of each source reported with its key and origin.
func TestConfigureRunPrecedence(t *testing.T) {
	const file = `instanceId: from-file
advertiseHttp: file-host:8080
demo: {mode: "off"}
sessionTimeout: 20s
createTopics: true
carryHeaders: [x-file]
brokers: [file:9092]
logLevel: warn
kafka: {saslMechanism: SCRAM-SHA-512, username: file-user, password: file-pw, tls: true}
`
	fromFile := runOptions{
		InstanceID: "from-file", SessionTimeout: 20 * time.Second, CreateTopics: true, CarryHeaders: []string{"x-file"},
		Brokers: []string{"file:9092"}, Username: "file-user", SASLMechanism: "SCRAM-SHA-512", TLS: true, Password: "file-pw",
		Level: slog.LevelWarn, BrokersFrom: "line 7", SessionTimeoutFrom: "line 4",
		AdvertiseHTTP: "file-host:8080", Demo: DemoOff,
	}
	env := map[string]string{
		"CAREPIPE_SESSION_TIMEOUT": "30s", "CAREPIPE_CARRY_HEADERS": "baggage, x-env", "KAFKA_BROKERS": "env-1:9092,env-2:9092",
		"KAFKA_TLS": "false", "KAFKA_PASSWORD": "env-pw", "CAREPIPE_API_TOKEN": "env-token",
		"CAREPIPE_ADVERTISE_HTTP": "10.0.0.2:8080", "CAREPIPE_DEMO": "auto",
	}
	for _, tt := range []struct {
		name string
		// file is the config file's text; empty: none.
		file string
		// configFlag names the file with --config rather than
		// CAREPIPE_CONFIG, which then names a file that is not there.
		configFlag bool
		env        map[string]string
		flags      []string
		want       runOptions
		// mistakes are the problems found, as Mistakes says them.
		mistakes []string
		// code and stderr: a command line refused before any layering.
		code   int
		stderr string
	}{
		{name: "defaults", want: runOptions{Level: slog.LevelInfo}},
		{name: "file", file: file, want: fromFile},
		{name: "file by --config over CAREPIPE_CONFIG", file: file, configFlag: true, want: fromFile},
		{name: "environment over the file", file: file, env: env, want: runOptions{
			InstanceID: "from-file", SessionTimeout: 30 * time.Second, CreateTopics: true, CarryHeaders: []string{"baggage", "x-env"},
			Brokers: []string{"env-1:9092", "env-2:9092"}, Username: "file-user", SASLMechanism: "SCRAM-SHA-512", TLS: false,
			Password: "env-pw", APIToken: "env-token", Level: slog.LevelWarn, BrokersFrom: "KAFKA_BROKERS", SessionTimeoutFrom: "CAREPIPE_SESSION_TIMEOUT",
			AdvertiseHTTP: "10.0.0.2:8080", Demo: DemoAuto,
		}},
		{name: "flags over the environment and the file", file: file, env: env, flags: []string{
			"--instance-id", "from-flag", "--session-timeout", "40s", "--create-topics=false", "--carry-headers", "x-flag",
			"--brokers", "flag:9092", "--kafka-username", "flag-user", "--kafka-tls", "--log-level", "debug",
			"--advertise-http", "10.0.0.3:8080", "--demo",
		}, want: runOptions{
			InstanceID: "from-flag", SessionTimeout: 40 * time.Second, CreateTopics: false, CarryHeaders: []string{"x-flag"},
			Brokers: []string{"flag:9092"}, Username: "flag-user", SASLMechanism: "SCRAM-SHA-512", TLS: true,
			Password: "env-pw", APIToken: "env-token", Level: slog.LevelDebug, BrokersFrom: "--brokers", SessionTimeoutFrom: "--session-timeout",
			AdvertiseHTTP: "10.0.0.3:8080", Demo: DemoOn,
		}},
		{name: "a variable set empty counts", file: file, env: map[string]string{"KAFKA_BROKERS": "", "KAFKA_TLS": ""}, want: runOptions{
			InstanceID: "from-file", SessionTimeout: 20 * time.Second, CreateTopics: true, CarryHeaders: []string{"x-file"},
			Username: "file-user", SASLMechanism: "SCRAM-SHA-512", Password: "file-pw", Level: slog.LevelWarn,
			BrokersFrom: "KAFKA_BROKERS", SessionTimeoutFrom: "line 4", AdvertiseHTTP: "file-host:8080", Demo: DemoOff,
		}},
		{name: "a username alone means PLAIN", env: map[string]string{"KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p"},
			want: runOptions{Username: "u", SASLMechanism: "PLAIN", Password: "p", Level: slog.LevelInfo}},
		{name: "a secret is never a flag", flags: []string{"--kafka-password", "s3cret"},
			code: 2, stderr: "flag provided but not defined: --kafka-password"},
		{name: "the file's mistake", file: "sessionTimeout: 10\nbrokers: [k:9092]\n",
			mistakes: []string{`line 1: sessionTimeout: "10": not a duration (write 100ms, 5s, 2m)`}},
		{name: "the environment's mistakes", env: map[string]string{"CAREPIPE_SESSION_TIMEOUT": "10", "KAFKA_TLS": "yes please"},
			mistakes: []string{
				`kafka.tls (KAFKA_TLS): "yes please": want true or false`,
				`sessionTimeout (CAREPIPE_SESSION_TIMEOUT): "10" is not a duration (write 100ms, 5s, 2m)`,
			}},
		{name: "the flags' mistakes", file: file, flags: []string{"--log-level", "loud", "--kafka-dial-timeout", "5", "--demo=sometimes"},
			mistakes: []string{
				`demo.mode (--demo): "sometimes": want auto, on or off`,
				`kafka.dialTimeout (--kafka-dial-timeout): "5" is not a duration (write 100ms, 5s, 2m)`,
				`logLevel (--log-level): "loud": want debug, info, warn or error`,
			}},
		{name: "a flag that does not parse", flags: []string{"--session-timeout", "soon"},
			code: 2, stderr: `invalid value "soon" for flag --session-timeout`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			flags := tt.flags
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "carepipe.yaml")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				env["CAREPIPE_CONFIG"] = path
				if tt.configFlag {
					env["CAREPIPE_CONFIG"] = filepath.Join(t.TempDir(), "not-there.yaml")
					flags = append([]string{"--config", path}, flags...)
				}
			}
			var stdout, stderr bytes.Buffer
			rs, code := ConfigureRun("run", flags, envOf(env), &stdout, &stderr)
			if tt.code != 0 {
				if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
					t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.stderr)
				}
				return
			}
			if code != -1 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var mistakes []string
			for _, err := range Mistakes(rs.Problems...) {
				mistakes = append(mistakes, err.Error())
			}
			slices.Sort(mistakes)
			if !slices.Equal(mistakes, tt.mistakes) {
				t.Fatalf("mistakes\n %q\nwant\n %q", mistakes, tt.mistakes)
			}
			if tt.mistakes != nil {
				return
			}
			if got := optionsOf(rs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The configuration reads the environment it is given, never the
// process's: what main passes is all there is.
func TestConfigureRunReadsOnlyTheEnvironmentGiven(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "process:9092")
	t.Setenv("CAREPIPE_CONFIG", filepath.Join(t.TempDir(), "not-there.yaml"))
	var stdout, stderr bytes.Buffer
	rs, code := ConfigureRun("run", nil, envOf(nil), &stdout, &stderr)
	if code != -1 || len(rs.Problems) > 0 {
		t.Fatalf("exit %d, problems %v: %s", code, rs.Problems, stderr.String())
	}
	if rs.Config.Brokers != nil || rs.File != "" {
		t.Errorf("read the process's environment: brokers %v, config file %q", rs.Config.Brokers, rs.File)
	}
}

// Regression (issue 23): the help said a negative --summary-every means
// never, and "-1" was refused (time.ParseDuration wants a unit). Any
// negative value now turns the summary off; 0 is the default, as for every
// duration option; a positive number without a unit is refused, since its
// unit would be a guess.
func TestSummaryEveryNegativeMeansNever(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration // < 0: never
	}{
		{"-1", -1}, {"-5", -1}, {"-1s", -time.Second}, {"0", 0}, {"2s", 2 * time.Second},
	} {
		var stdout, stderr bytes.Buffer
		rs, code := ConfigureRun("run", []string{"--summary-every", tc.arg}, envOf(nil), &stdout, &stderr)
		if code >= 0 || len(rs.Problems) > 0 {
			t.Errorf("--summary-every %s: exit %d, problems %v, stderr %q", tc.arg, code, rs.Problems, stderr.String())
			continue
		}
		if got := rs.Config.SummaryEvery; (tc.want < 0) != (got < 0) || (tc.want >= 0 && got != tc.want) {
			t.Errorf("--summary-every %s: SummaryEvery %v, want %v", tc.arg, got, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if _, code := ConfigureRun("run", []string{"--summary-every", "5"}, envOf(nil), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "no unit") {
		t.Errorf("--summary-every 5: exit %d, stderr %q; want 2 and that it has no unit", code, stderr.String())
	}
}

// topics, loadgen and the operator commands take run's connection the
// same way: the config file (topics, loadgen), the environment over it,
// the flags over both; topics and loadgen keep their own flags' meaning.
func TestConfigureCommandsLayerTheConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("brokers: [file:9092]\nappId: file-app\ncommitInterval: 250ms\npipelines: [orders]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type conn struct {
		Brokers        []string
		AppID          string
		Pipelines      []string
		CommitInterval time.Duration
	}
	configure := map[string]func(args []string, env LookupEnv) (Config, int){
		"topics": func(args []string, env LookupEnv) (Config, int) {
			ts, code := ConfigureTopics(false, args, env, &bytes.Buffer{}, &bytes.Buffer{})
			return ts.Config, code
		},
		"loadgen": func(args []string, env LookupEnv) (Config, int) {
			ls, code := ConfigureLoadgen(args, env, &bytes.Buffer{}, &bytes.Buffer{})
			return ls.Config, code
		},
		"reset": func(args []string, env LookupEnv) (Config, int) {
			fs := flag.NewFlagSet("reset", flag.ContinueOnError)
			o, code := ConfigureOps(fs, OpsCommand{NeedPipeline: true, Connect: true}, append([]string{"--pipeline", "orders"}, args...), env, &bytes.Buffer{}, &bytes.Buffer{})
			if len(o.ConnProblems) > 0 {
				t.Fatal(o.ConnProblems)
			}
			return o.Conn, code
		},
	}
	for _, tt := range []struct {
		cmd   string
		env   map[string]string
		flags []string
		want  conn
	}{
		{"topics", map[string]string{"CAREPIPE_CONFIG": path}, nil,
			conn{Brokers: []string{"file:9092"}, AppID: "file-app", Pipelines: []string{"orders"}, CommitInterval: 250 * time.Millisecond}},
		{"topics", map[string]string{"CAREPIPE_CONFIG": path, "KAFKA_BROKERS": "env:9092", "CAREPIPE_APP_ID": "env-app"}, []string{"--app-id", "flag-app", "--pipelines", "alerts"},
			conn{Brokers: []string{"env:9092"}, AppID: "flag-app", Pipelines: []string{"alerts"}, CommitInterval: 250 * time.Millisecond}},
		{"loadgen", map[string]string{"CAREPIPE_CONFIG": path}, nil,
			conn{Brokers: []string{"file:9092"}, AppID: "file-app", Pipelines: []string{"orders"}, CommitInterval: 250 * time.Millisecond}},
		{"loadgen", map[string]string{"CAREPIPE_CONFIG": path, "KAFKA_BROKERS": "env:9092"}, []string{"--brokers", "flag:9092", "--commit-interval", "1s"},
			conn{Brokers: []string{"flag:9092"}, AppID: "file-app", Pipelines: []string{"orders"}, CommitInterval: time.Second}},
		{"reset", map[string]string{"CAREPIPE_CONFIG": path, "KAFKA_BROKERS": "env:9092", "CAREPIPE_APP_ID": "env-app"}, nil,
			conn{Brokers: []string{"env:9092"}, AppID: "env-app"}},
		{"reset", map[string]string{"KAFKA_BROKERS": "env:9092"}, []string{"--brokers", "flag:9092"},
			conn{Brokers: []string{"flag:9092"}}},
	} {
		cfg, code := configure[tt.cmd](tt.flags, envOf(tt.env))
		if code != -1 {
			t.Fatalf("%s %v: exit %d", tt.cmd, tt.flags, code)
		}
		got := conn{Brokers: cfg.Brokers, AppID: cfg.AppID, Pipelines: cfg.Pipelines, CommitInterval: cfg.CommitInterval}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %v with %v:\n got  %+v\n want %+v", tt.cmd, tt.flags, tt.env, got, tt.want)
		}
	}
}
