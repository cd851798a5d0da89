package app

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.yaml.in/yaml/v3"
)

// Inputs from public documentation:
//   - the bearer token of RFC 7628 section 4.1's example (and its initial
//     client response, less the host and port extensions that Kafka does
//     not use);
//   - AWS's documented example access key pair (IAM User Guide, "Manage
//     access keys for IAM users",
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html);
//   - an MSK IAM bootstrap broker of the MSK Developer Guide, "Get the
//     bootstrap brokers using the AWS CLI",
//     https://docs.aws.amazon.com/msk/latest/developerguide/get-bootstrap-cli.html.
const (
	rfc7628Token   = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
	awsExampleKey  = "AKIAIOSFODNN7EXAMPLE"
	awsExampleSec  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	mskIAMBroker   = "b-1.myTestCluster.123z8u.c2.kafka.us-west-1.amazonaws.com:9098"
	awsSessionTok  = "FwoGZXIvYXdzEXAMPLEsessiontoken"
	oauthSecretTok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYXJlcGlwZSJ9.c2lnbmF0dXJl"
)

// Every mistake in the OAUTHBEARER and AWS_MSK_IAM settings is reported,
// by key, with no secret in the text.
func TestSASLCloudMechanismValidation(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(oauthSecretTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokers := []string{mskIAMBroker}
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string // keys of the mistakes, sorted
	}{
		{"oauth token", Config{SASLMechanism: "OAUTHBEARER", OAuthToken: oauthSecretTok}, nil},
		{"oauth token file and extensions", Config{SASLMechanism: "oauthbearer", OAuthTokenFile: tokenFile,
			OAuthExtensions: map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-1"}}, nil},
		{"oauth without a token", Config{SASLMechanism: "OAUTHBEARER"}, []string{"kafka.oauthToken"}},
		{"oauth token and file", Config{SASLMechanism: "OAUTHBEARER", OAuthToken: oauthSecretTok, OAuthTokenFile: tokenFile}, []string{"kafka.oauthTokenFile"}},
		{"oauth token with its scheme", Config{SASLMechanism: "OAUTHBEARER", OAuthToken: "Bearer " + oauthSecretTok}, []string{"kafka.oauthToken"}},
		{"oauth bad extensions", Config{SASLMechanism: "OAUTHBEARER", OAuthToken: oauthSecretTok,
			OAuthExtensions: map[string]string{"auth": "x", "logical-cluster": "lkc-1", "ok": "line\nbreak"}},
			[]string{"kafka.oauthExtensions", "kafka.oauthExtensions", "kafka.oauthExtensions"}},
		{"oauth token file missing", Config{SASLMechanism: "OAUTHBEARER", OAuthTokenFile: filepath.Join(t.TempDir(), "none")}, []string{"kafka.oauthTokenFile"}},
		{"msk iam", Config{SASLMechanism: "AWS_MSK_IAM", TLS: true, AWSAccessKeyID: awsExampleKey, AWSSecretAccessKey: awsExampleSec, AWSSessionToken: awsSessionTok}, nil},
		{"msk iam without credentials or TLS", Config{SASLMechanism: "AWS_MSK_IAM"}, []string{"kafka.awsAccessKeyId", "kafka.awsSecretAccessKey", "kafka.tls"}},
		{"msk iam without the secret", Config{SASLMechanism: "AWS_MSK_IAM", TLSCAFile: "", TLS: true, AWSAccessKeyID: awsExampleKey}, []string{"kafka.awsSecretAccessKey"}},
		{"unknown mechanism", Config{SASLMechanism: "GSSAPI", Username: "u", Password: "p"}, []string{"kafka.saslMechanism"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Brokers = brokers
			tt.cfg.Pipelines = []string{"alerts"}
			var got []string
			for _, err := range Mistakes(tt.cfg.Check()) {
				var ke *KeyError
				if !errors.As(err, &ke) {
					t.Fatalf("mistake without a key: %v", err)
				}
				got = append(got, ke.Key)
				for _, secret := range []string{oauthSecretTok, awsExampleSec, awsSessionTok} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("mistake %q holds a secret", err)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("mistakes at %q, want %q", got, tt.want)
			}
		})
	}
}

// OAUTHBEARER sends the token and extensions as RFC 7628 section 3.1
// frames them; a token file is read again for each connection, so that a
// token refreshed in place is sent from then on.
func TestOAuthBearerMechanism(t *testing.T) {
	ctx := context.Background()
	c := Config{SASLMechanism: "OAUTHBEARER", OAuthToken: rfc7628Token}
	mech, err := c.saslMechanism()
	if err != nil {
		t.Fatal(err)
	}
	if mech.Name() != "OAUTHBEARER" {
		t.Fatalf("mechanism %s", mech.Name())
	}
	_, first, err := mech.Authenticate(ctx, "kafka:9093")
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7628 section 4.1's initial client response, with no authzid
	// and without its host and port key-value pairs.
	if want := "n,,\x01auth=Bearer " + rfc7628Token + "\x01\x01"; string(first) != want {
		t.Errorf("initial response %q, want %q", first, want)
	}

	path := filepath.Join(t.TempDir(), "token")
	write := func(tok string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first.token")
	c = Config{SASLMechanism: "OAUTHBEARER", OAuthTokenFile: path, OAuthExtensions: map[string]string{"logicalCluster": "lkc-1"}}
	if mech, err = c.saslMechanism(); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"first.token", "refreshed.token"} {
		write(tok)
		_, msg, err := mech.Authenticate(ctx, "kafka:9093")
		if err != nil {
			t.Fatal(err)
		}
		if want := "n,,\x01auth=Bearer " + tok + "\x01logicalCluster=lkc-1\x01\x01"; string(msg) != want {
			t.Errorf("initial response %q, want %q", msg, want)
		}
	}
	write("Bearer " + oauthSecretTok)
	if _, _, err := mech.Authenticate(ctx, "kafka:9093"); err == nil || strings.Contains(err.Error(), oauthSecretTok) {
		t.Errorf("a malformed token in the file: %v, want an error without the token", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mech.Authenticate(ctx, "kafka:9093"); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Errorf("token file gone: %v, want an error naming the token file", err)
	}
}

// AWS_MSK_IAM signs the login with the configured credentials for the
// region in the broker's host name. Only the configuration path is tested:
// kfake does not speak AWS_MSK_IAM, and MSK's check of the signature
// needs AWS.
func TestMSKIAMMechanism(t *testing.T) {
	c := Config{SASLMechanism: "AWS_MSK_IAM", TLS: true, AWSAccessKeyID: awsExampleKey, AWSSecretAccessKey: awsExampleSec, AWSSessionToken: awsSessionTok}
	mech, err := c.saslMechanism()
	if err != nil {
		t.Fatal(err)
	}
	if mech.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %s", mech.Name())
	}
	_, msg, err := mech.Authenticate(context.Background(), mskIAMBroker)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(msg), awsExampleSec) {
		t.Fatal("the login message holds the secret key")
	}
	var m map[string]string
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("login message %q: %v", msg, err)
	}
	cred := regexp.MustCompile(`^` + awsExampleKey + `/\d{8}/us-west-1/kafka-cluster/aws4_request$`)
	if !cred.MatchString(m["x-amz-credential"]) || m["x-amz-security-token"] != awsSessionTok || m["action"] != "kafka-cluster:Connect" || m["x-amz-signature"] == "" {
		t.Errorf("login message %v: want the key's credential scope in us-west-1, the session token, the Connect action and a signature", m)
	}
}

// A broker that does not enable the mechanism refuses it by name at
// start-up, with a real client: the mechanism configured is the one
// offered on the wire. (kfake enables PLAIN and SCRAM only, so this is as
// far as a login against it goes.)
func TestCheckKafkaCloudMechanismRefused(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "admin", testPass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	addr := k.ListenAddrs()[0]
	for _, c := range []Config{
		{SASLMechanism: "OAUTHBEARER", OAuthToken: oauthSecretTok},
		{SASLMechanism: "AWS_MSK_IAM", AWSAccessKeyID: awsExampleKey, AWSSecretAccessKey: awsExampleSec},
	} {
		c.Brokers = []string{addr}
		opts, err := c.kafkaOpts()
		if err != nil {
			t.Fatal(err)
		}
		err = c.checkKafka(context.Background(), opts, kafkaCheckTimeout)
		want := "does not enable SASL mechanism " + c.SASLMechanism
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: checkKafka: %v, want an error saying %q", c.SASLMechanism, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), oauthSecretTok) || strings.Contains(err.Error(), awsExampleSec)) {
			t.Errorf("the error holds a secret: %v", err)
		}
	}
}

// What is logged and what config check prints of the cloud mechanisms:
// the token file's path, the extensions and the access key id; never the
// token, the secret key or the session token (Redacted shows them as
// "[redacted]", FileOf leaves them out and Secrets lists them).
func TestCloudMechanismSecretsStayHidden(t *testing.T) {
	c := Config{
		Brokers: []string{mskIAMBroker}, SASLMechanism: "AWS_MSK_IAM", OAuthToken: oauthSecretTok,
		OAuthTokenFile: "/var/run/secrets/kafka/token", OAuthExtensions: map[string]string{"logicalCluster": "lkc-1"},
		AWSAccessKeyID: awsExampleKey, AWSSecretAccessKey: awsExampleSec, AWSSessionToken: awsSessionTok,
	}
	logged, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	printed, err := yaml.Marshal(FileOf(c))
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"Redacted": string(logged), "FileOf": string(printed)} {
		for _, secret := range []string{oauthSecretTok, awsExampleSec, awsSessionTok} {
			if strings.Contains(s, secret) {
				t.Errorf("%s holds a secret: %s", what, s)
			}
		}
		for _, want := range []string{"/var/run/secrets/kafka/token", "lkc-1", awsExampleKey} {
			if !strings.Contains(s, want) {
				t.Errorf("%s does not show %q: %s", what, want, s)
			}
		}
	}
	if got, want := c.Secrets(), []string{"kafka.oauthToken", "kafka.awsSecretAccessKey", "kafka.awsSessionToken"}; !slices.Equal(got, want) {
		t.Errorf("Secrets = %q, want %q", got, want)
	}
}
