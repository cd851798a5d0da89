package scenarios

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/sim"
)

// The principals of the secured clusters. The passwords are distinctive so
// that a test can look for them in errors and logs.
const (
	adminUser = "admin"
	adminPass = "admin-Secret-4711"
	appUser   = "carepipe"
	appPass   = "carepipe-Secret-0815"
	wrongPass = "not-the-Secret-1234"
)

// failBound is how soon a refused carepipe must exit: the issue's 30 s.
const failBound = 30 * time.Second

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, and a client certificate of another CA, all written
// as PEM files to a test directory.
type testPKI struct {
	caFile             string
	certFile, keyFile  string // client, signed by the CA
	otherCert, otherKy string // client, signed by a CA nobody trusts
	pool               *x509.CertPool
	server             tls.Certificate
	client             tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ca, err := sim.NewPKI("carepipe test CA")
	must(err)
	other, err := sim.NewPKI("someone else's CA")
	must(err)
	p := &testPKI{pool: ca.Pool}
	p.caFile, err = ca.WriteCA(dir, "ca.pem")
	must(err)
	p.server, err = ca.Issue(10, x509.ExtKeyUsageServerAuth)
	must(err)
	p.client, err = ca.Issue(11, x509.ExtKeyUsageClientAuth)
	must(err)
	p.certFile, p.keyFile, err = sim.WritePair(dir, "client", p.client)
	must(err)
	stranger, err := other.Issue(12, x509.ExtKeyUsageClientAuth)
	must(err)
	p.otherCert, p.otherKy, err = sim.WritePair(dir, "other", stranger)
	must(err)
	return p
}

// The ACLs the orders pipeline needs, by name, so that a test can leave one
// out. WRITE and READ imply DESCRIBE; "processed-describe" keeps the output
// topic visible when its WRITE is left out, so that the refusal comes where
// a real deployment meets it: at the first produce.
var ordersACLs = []struct {
	name string
	acl  kfake.ACL
}{
	{"submitted-read", topicACL(orders.TopicSubmitted, kmsg.ACLOperationRead)},
	{"submitted-describe", topicACL(orders.TopicSubmitted, kmsg.ACLOperationDescribe)},
	{"processed-write", topicACL(orders.TopicProcessed, kmsg.ACLOperationWrite)},
	{"processed-describe", topicACL(orders.TopicProcessed, kmsg.ACLOperationDescribe)},
	{"errors-write", topicACL(orders.TopicErrors, kmsg.ACLOperationWrite)},
	{"group-read", kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: orders.Group, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true}},
	{"txn-write", kfake.ACL{Resource: kmsg.ACLResourceTypeTransactionalId, Name: orders.Group + "-", Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationWrite, Allow: true}},
	{"topics-create", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "medication.order.", Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationCreate, Allow: true}},
	// Optional: the outputs' max.message.bytes, read at start-up; without
	// it a warning, and the default cap.
	{"topics-describe-configs", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "medication.order.", Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationDescribeConfigs, Allow: true}},
}

func topicACL(topic string, op kmsg.ACLOperation) kfake.ACL {
	return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
}

// ordersACLsWithout is ordersACLs less those named.
func ordersACLsWithout(names ...string) []kfake.ACL {
	var out []kfake.ACL
	for _, a := range ordersACLs {
		if !contains(names, a.name) {
			out = append(out, a.acl)
		}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// secureWorld is a cluster that speaks only TLS (mTLS when asked), requires
// SASL SCRAM-SHA-512 and enforces ACLs: a superuser for the test's own
// clients, and carepipe's principal with the ACLs given.
type secureWorld struct {
	t       *testing.T
	pki     *testPKI
	cluster *sim.Cluster
	admin   *kgo.Client
}

func newSecureWorld(t *testing.T, mtls bool, acls []kfake.ACL) *secureWorld {
	t.Helper()
	return newSecureWorldOpts(t, mtls, acls)
}

func newSecureWorldOpts(t *testing.T, mtls bool, acls []kfake.ACL, extra ...kfake.Opt) *secureWorld {
	t.Helper()
	pki := newPKI(t)
	stc := &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}
	if mtls {
		stc.ClientAuth = tls.RequireAndVerifyClientCert
		stc.ClientCAs = pki.pool
	}
	c := kafkatest.NewCluster(t, sim.KafkaOpts(
		kfake.TLS(stc),
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", adminUser, adminPass),
		kfake.User("SCRAM-SHA-512", appUser, appPass, acls...),
	), sim.KafkaOpts(extra...))
	w := &secureWorld{t: t, pki: pki, cluster: c}
	w.admin = w.client()
	return w
}

// client is a superuser client, closed when the test ends.
func (w *secureWorld) client(opts ...kgo.Opt) *kgo.Client {
	w.t.Helper()
	tc := &tls.Config{RootCAs: w.pki.pool, Certificates: []tls.Certificate{w.pki.client}, MinVersion: tls.VersionTLS12}
	base := append(w.cluster.ClientOpts(), kgo.DialTLSConfig(tc),
		kgo.SASL(scram.Auth{User: adminUser, Pass: adminPass}.AsSha512Mechanism()))
	return kafkatest.Client(w.t, base, opts...)
}

// config is carepipe's configuration for the orders pipeline on this
// cluster, as the environment would give it: KAFKA_TLS_CA and SCRAM.
func (w *secureWorld) config(log *slog.Logger) app.Config {
	return app.Config{
		Brokers:        w.cluster.Addrs(),
		Pipelines:      []string{"orders"},
		CreateTopics:   true,
		Partitions:     3,
		CommitInterval: 50 * time.Millisecond,
		TLSCAFile:      w.pki.caFile,
		SASLMechanism:  "SCRAM-SHA-512",
		Username:       appUser,
		Password:       appPass,
		SummaryEvery:   -1,
		Stdout:         io.Discard,
		Logger:         log,
	}
}

// seedOrders creates the input topic, as an operator would, and produces n
// orders to it.
func (w *secureWorld) seedOrders(n int) []string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(w.admin).CreateTopic(ctx, 3, 1, nil, orders.TopicSubmitted)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		w.t.Fatal(err)
	}
	recs, ids := sim.MedicationOrders(7, n)
	if err := sim.Produce(ctx, w.admin, recs); err != nil {
		w.t.Fatal(err)
	}
	return ids
}

// runMustFail runs carepipe, which must return an error within failBound.
func runMustFail(t *testing.T, cfg app.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	start := time.Now()
	err := app.Run(ctx, cfg)
	if ctx.Err() != nil {
		t.Fatalf("Run did not fail within %v (returned %v): a refusal must be fatal, not retried", failBound, err)
	}
	if err == nil {
		t.Fatal("Run returned nil, want an error")
	}
	t.Logf("Run failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	return err
}

// logBuffer is a debug-level JSON log, safe for the runner's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// requireNoSecrets fails t if s holds any of the passwords.
func requireNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, p := range []string{adminPass, appPass, wrongPass} {
		if strings.Contains(s, p) {
			t.Errorf("%s holds a password", what)
		}
	}
}

// Issue (security) 1 and 5: with SASL SCRAM-SHA-512 over TLS, and over mTLS
// with the client certificate of KAFKA_TLS_CERT/KAFKA_TLS_KEY, carepipe
// processes orders end to end under a principal that has exactly the ACLs
// ordersACLs lists (so the list is what the README tells operators to
// grant), creating the topics it may create.
func TestSecurityOrdersEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		mtls bool
	}{
		{"SCRAM-SHA-512 over TLS", false},
		{"SCRAM-SHA-512 over mTLS", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSecureWorld(t, tc.mtls, ordersACLsWithout())
			ids := w.seedOrders(20)
			var logs logBuffer
			cfg := w.config(logs.logger())
			if tc.mtls {
				cfg.TLSCertFile, cfg.TLSKeyFile = w.pki.certFile, w.pki.keyFile
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Reading stops when Run returns, which it must not do here.
			rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
			defer rcancel()
			done := make(chan error, 1)
			go func() {
				done <- app.Run(ctx, cfg)
				rcancel()
			}()

			cl := w.client(kgo.ConsumeTopics(orders.TopicProcessed), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			seen := map[string]int{}
			for n := 0; n < len(ids); {
				fs := cl.PollFetches(rctx)
				if rctx.Err() != nil {
					select {
					case err := <-done:
						t.Fatalf("Run returned after %d of %d orders: %v", n, len(ids), err)
					default:
					}
					t.Fatalf("%d of %d orders processed within a minute", n, len(ids))
				}
				fs.EachRecord(func(r *kgo.Record) {
					var o struct{ ID, Status string }
					if err := json.Unmarshal(r.Value, &o); err != nil {
						t.Fatal(err)
					}
					seen[o.ID]++
					n++
				})
			}
			for _, id := range ids {
				if seen[id] != 1 {
					t.Errorf("order %s processed %d times, want once", id, seen[id])
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			requireNoSecrets(t, "the log", logs.String())
		})
	}
}

// Issue (security) 2 and 5: a broker that refuses carepipe's credentials or
// certificates ends Run with an error within failBound (not a retry loop),
// naming the broker (and the SASL mechanism where SASL is at fault) and
// saying what to set, without any password in the error or the log.
//
// What franz-go v1.22.3 reports against kfake (which closes the connection
// on a failed SASL exchange instead of answering SASL_AUTHENTICATION_FAILED
// as Kafka does): a bare io.EOF for a wrong password, an unknown user or a
// mechanism the user lacks; *kgo.ErrFirstReadEOF for no SASL or no TLS; a
// *tls.CertificateVerificationError for an untrusted broker; a "remote
// error: tls: certificate required" (or "unknown certificate authority")
// *net.OpError for a missing or untrusted client certificate.
func TestSecurityAuthFailuresAreFatal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mtls   bool
		mutate func(*app.Config, *testPKI)
		want   []string // besides the broker's address
	}{
		{"wrong password", false, func(c *app.Config, _ *testPKI) { c.Password = wrongPass },
			[]string{"authentication with SCRAM-SHA-512", "KAFKA_PASSWORD"}},
		{"unknown user", false, func(c *app.Config, _ *testPKI) { c.Username = "nobody" },
			[]string{"authentication with SCRAM-SHA-512", "KAFKA_USERNAME"}},
		{"mechanism without the user", false, func(c *app.Config, _ *testPKI) { c.SASLMechanism = "SCRAM-SHA-256" },
			[]string{"authentication with SCRAM-SHA-256", "KAFKA_SASL_MECHANISM"}},
		{"no SASL", false, func(c *app.Config, _ *testPKI) { c.SASLMechanism, c.Username, c.Password = "", "", "" },
			[]string{"closed the connection", "SASL"}},
		{"broker certificate not trusted", false, func(c *app.Config, _ *testPKI) { c.TLSCAFile, c.TLS = "", true },
			[]string{"not trusted", "KAFKA_TLS_CA"}},
		{"plaintext to the TLS listener", false, func(c *app.Config, _ *testPKI) { c.TLSCAFile = "" },
			[]string{"closed the connection", "TLS"}},
		// kfake enables PLAIN and SCRAM only: the cloud mechanisms are
		// refused by name at the handshake, which shows that the one
		// configured is the one offered (app's tests cover the login
		// messages themselves).
		{"OAUTHBEARER, which the broker does not enable", false, func(c *app.Config, _ *testPKI) {
			c.SASLMechanism, c.Username, c.Password, c.OAuthToken = "OAUTHBEARER", "", "", appPass
		}, []string{"does not enable SASL mechanism OAUTHBEARER", "KAFKA_SASL_MECHANISM"}},
		{"AWS_MSK_IAM, which the broker does not enable", false, func(c *app.Config, _ *testPKI) {
			c.SASLMechanism, c.Username, c.Password, c.AWSAccessKeyID, c.AWSSecretAccessKey = "AWS_MSK_IAM", "", "", "AKIAIOSFODNN7EXAMPLE", appPass
		}, []string{"does not enable SASL mechanism AWS_MSK_IAM", "KAFKA_SASL_MECHANISM"}},
		{"mTLS without a client certificate", true, func(*app.Config, *testPKI) {},
			[]string{"client certificate", "KAFKA_TLS_CERT"}},
		{"mTLS with an untrusted client certificate", true, func(c *app.Config, p *testPKI) { c.TLSCertFile, c.TLSKeyFile = p.otherCert, p.otherKy },
			[]string{"client certificate", "KAFKA_TLS_CERT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSecureWorld(t, tc.mtls, ordersACLsWithout())
			var logs logBuffer
			cfg := w.config(logs.logger())
			tc.mutate(&cfg, w.pki)
			err := runMustFail(t, cfg)
			msg := err.Error()
			for _, s := range append(tc.want, w.cluster.Addrs()[0]) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not say %q", msg, s)
				}
			}
			requireNoSecrets(t, "the error", msg)
			requireNoSecrets(t, "the log", logs.String())
		})
	}
}

// Issue (security) 3 and 4: a missing ACL ends Run within failBound with an
// error that names the resource and what to grant, where each surfaces in
// the runner: the output topic's WRITE at the first produce (through
// AddPartitionsToTxn), a topic the principal may not even describe at the
// start-up topic check, the transactional id at InitProducerID, the group
// at the join, the input's READ at the fetch, topic creation at start-up.
// Orders wait in the input, so that a pipeline that started would produce.
func TestSecurityMissingACLIsFatal(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop []string
		want []string
	}{
		{"output topic WRITE", []string{"processed-write"},
			[]string{"not authorized to write to topic medication.order.processed (TOPIC_AUTHORIZATION_FAILED): grant WRITE on it to this principal"}},
		{"output topic, no ACL at all", []string{"processed-write", "processed-describe"},
			[]string{"not authorized to describe topic medication.order.processed (TOPIC_AUTHORIZATION_FAILED): grant WRITE on it"}},
		{"transactional id", []string{"txn-write"},
			[]string{"not authorized to use transactional id medication-order-processor-", "(TRANSACTIONAL_ID_AUTHORIZATION_FAILED): grant WRITE on TransactionalId medication-order-processor-", "or on the prefix medication-order-processor- (PREFIXED), to this principal"}},
		{"group", []string{"group-read"},
			[]string{"not authorized to use group medication-order-processor (GROUP_AUTHORIZATION_FAILED): grant READ on it"}},
		{"input topic READ", []string{"submitted-read"},
			[]string{"not authorized to read topic medication.order.submitted (TOPIC_AUTHORIZATION_FAILED): grant READ on it"}},
		{"topic creation", []string{"topics-create"},
			[]string{"creating topic medication.order.", "TOPIC_AUTHORIZATION_FAILED", "grant CREATE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSecureWorld(t, false, ordersACLsWithout(tc.drop...))
			w.seedOrders(5)
			var logs logBuffer
			err := runMustFail(t, w.config(logs.logger()))
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			requireNoSecrets(t, "the error", err.Error())
			requireNoSecrets(t, "the log", logs.String())
		})
	}
}

// Issue (security) 2, later: credentials refused after start-up (a rotated
// password) end Run within failBound too. The broker re-authenticates every
// connection each second (connections.max.reauth.ms), so the refusal is met
// at once. Two ways a broker refuses: Kafka answers SASL_AUTHENTICATION_FAILED
// (injected here on every SaslAuthenticate), which reaches the runner as that
// error; kfake closes the connection when the password no longer matches
// (changed here through AlterUserScramCredentials), which franz-go retries as
// an EOF for ever, so the app's SASL watch must notice it.
func TestSecurityCredentialsRefusedAfterStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse func(w *secureWorld)
		want   []string
	}{
		{"SASL_AUTHENTICATION_FAILED", func(w *secureWorld) {
			k := w.cluster.Kafka()
			k.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
				k.KeepControl()
				resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
				resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
				return resp, nil, true
			})
		}, []string{"SASL_AUTHENTICATION_FAILED"}},
		{"password rotated", func(w *secureWorld) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := kadm.NewClient(w.admin).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
				User: appUser, Mechanism: kadm.ScramSha512, Password: "rotated-" + wrongPass,
			}})
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				w.t.Fatal(err)
			}
		}, []string{"authentication with SCRAM-SHA-512", "after start-up", "KAFKA_PASSWORD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSecureWorldOpts(t, false, ordersACLsWithout(), kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1000"}))
			ids := w.seedOrders(5)
			var logs logBuffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- app.Run(ctx, w.config(logs.logger())) }()

			// Refuse once the orders are through: Run is past its checks.
			cl := w.client(kgo.ConsumeTopics(orders.TopicProcessed), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
			defer rcancel()
			for n := 0; n < len(ids); n += cl.PollFetches(rctx).NumRecords() {
				if rctx.Err() != nil {
					t.Fatalf("%d of %d orders processed within a minute", n, len(ids))
				}
			}
			tc.refuse(w)
			refused := time.Now()
			var err error
			select {
			case err = <-done:
			case <-time.After(failBound):
				t.Fatalf("Run still running %v after the credentials were refused", failBound)
			}
			if err == nil {
				t.Fatal("Run returned nil, want an error")
			}
			t.Logf("Run failed %v after the refusal: %v", time.Since(refused).Round(time.Millisecond), err)
			for _, s := range append(tc.want, w.cluster.Addrs()[0]) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			requireNoSecrets(t, "the error", err.Error())
			requireNoSecrets(t, "the log", logs.String())
		})
	}
}

// Issue (security) 2, in the runner alone: the SASL errors a broker answers
// after start-up (on re-authentication, here every second) end Run with an
// error wrapping them, within failBound, rather than session after session
// of retries. No app and no SASL watch here: the runner must stop by itself.
func TestSecurityRunnerStopsOnSASLErrors(t *testing.T) {
	for _, tc := range []struct {
		key  kmsg.Key
		code *kerr.Error
	}{
		{kmsg.SASLAuthenticate, kerr.SaslAuthenticationFailed},
		{kmsg.SASLAuthenticate, kerr.IllegalSaslState},
		{kmsg.SASLHandshake, kerr.UnsupportedSaslMechanism},
	} {
		t.Run(tc.code.Message, func(t *testing.T) {
			w := newSecureWorldOpts(t, false, ordersACLsWithout(), kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1000"}))
			ids := w.seedOrders(5)
			tc2 := &tls.Config{RootCAs: w.pki.pool, MinVersion: tls.VersionTLS12}
			r, err := pipeline.New(stageSpec(t, catalog.Settings{}, orders.Name, orders.Name),
				pipeline.WithKafka(append(w.cluster.ClientOpts(), kgo.DialTLSConfig(tc2),
					kgo.SASL(scram.Auth{User: appUser, Pass: appPass}.AsSha512Mechanism()))...),
				pipeline.WithCreateTopics(3, 1), pipeline.WithCommitInterval(50*time.Millisecond),
				pipeline.WithTransactionTimeout(5*time.Second), pipeline.WithLogger(testLogger()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				<-done
			})

			cl := w.client(kgo.ConsumeTopics(orders.TopicProcessed), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer rcancel()
			for n := 0; n < len(ids); n += cl.PollFetches(rctx).NumRecords() {
				if rctx.Err() != nil {
					t.Fatalf("%d of %d orders processed within a minute", n, len(ids))
				}
			}
			var injected atomic.Int64
			k := w.cluster.Kafka()
			k.ControlKey(int16(tc.key), func(req kmsg.Request) (kmsg.Response, error, bool) {
				k.KeepControl()
				injected.Add(1)
				resp := req.ResponseKind()
				switch r := resp.(type) {
				case *kmsg.SASLAuthenticateResponse:
					r.ErrorCode = tc.code.Code
				case *kmsg.SASLHandshakeResponse:
					r.ErrorCode = tc.code.Code
				}
				return resp, nil, true
			})
			refused := time.Now()
			select {
			case err = <-done:
				done <- err // for the cleanup
			case <-time.After(failBound):
				t.Fatalf("Run still running %v after the broker began refusing with %s (%d refusals)", failBound, tc.code.Message, injected.Load())
			}
			if injected.Load() == 0 {
				t.Fatal("the refusal never fired")
			}
			t.Logf("Run returned %v after the refusal: %v", time.Since(refused).Round(time.Millisecond), err)
			if !errors.Is(err, tc.code) {
				t.Errorf("Run returned %v, want an error wrapping %s", err, tc.code.Message)
			}
		})
	}
}
