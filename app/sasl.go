package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms carepipe speaks, as Config.SASLMechanism names them.
const (
	mechOAuth  = "OAUTHBEARER"
	mechMSKIAM = "AWS_MSK_IAM"
)

var saslMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", mechOAuth, mechMSKIAM}

// validateSASL reports the mistakes in the SASL settings that need no file
// read: an unknown mechanism, and each mechanism's missing or malformed
// credentials. Errors never quote a secret.
func (c *Config) validateSASL() []error {
	var errs []error
	mech := strings.ToUpper(c.SASLMechanism)
	if mech != "" && !slices.Contains(saslMechanisms, mech) {
		errs = append(errs, c.keyErrf("kafka.saslMechanism", "unknown SASL mechanism %q (%s)", c.SASLMechanism, strings.Join(saslMechanisms, ", ")))
		// Most likely a user and password mechanism misspelt: its
		// credentials are checked as PLAIN's.
		mech = "PLAIN"
	}
	switch mech {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" {
			errs = append(errs, c.keyErrf("kafka.username", "SASL %s needs a username (or KAFKA_USERNAME)", c.SASLMechanism))
		}
		if c.Password == "" {
			errs = append(errs, c.keyErrf("kafka.password", "SASL %s needs a password (or KAFKA_PASSWORD)", c.SASLMechanism))
		}
	case mechOAuth:
		var sources []string
		for _, s := range []struct{ key, v string }{{"kafka.oauthToken", c.OAuthToken}, {"kafka.oauthTokenFile", c.OAuthTokenFile}, {"kafka.oauthTokenURL", c.OAuthTokenURL}} {
			if s.v != "" {
				sources = append(sources, s.key)
			}
		}
		switch {
		case len(sources) == 0:
			errs = append(errs, c.keyErr("kafka.oauthToken", errors.New("SASL OAUTHBEARER needs a token: kafka.oauthToken (KAFKA_SASL_OAUTH_TOKEN), a file holding it, kafka.oauthTokenFile (KAFKA_SASL_OAUTH_TOKEN_FILE, --kafka-sasl-oauth-token-file), or a token endpoint, kafka.oauthTokenURL (KAFKA_SASL_OAUTH_TOKEN_URL, --kafka-sasl-oauth-token-url)")))
		case len(sources) > 1:
			errs = append(errs, c.keyErrf(sources[1], "is set, and so is %s: give one source of the token", sources[0]))
		case c.OAuthToken != "":
			if err := checkBearerToken(c.OAuthToken); err != nil {
				errs = append(errs, c.keyErr("kafka.oauthToken", err))
			}
		}
		if c.OAuthTokenURL != "" {
			if err := checkTokenURL(c.OAuthTokenURL); err != nil {
				errs = append(errs, c.keyErr("kafka.oauthTokenURL", err))
			}
			if c.OAuthClientID == "" {
				errs = append(errs, c.keyErr("kafka.oauthClientId", errors.New("a token endpoint needs the client id (KAFKA_SASL_OAUTH_CLIENT_ID, or --kafka-sasl-oauth-client-id)")))
			}
			if c.OAuthClientSecret == "" {
				errs = append(errs, c.keyErr("kafka.oauthClientSecret", errors.New("a token endpoint needs the client secret (KAFKA_SASL_OAUTH_CLIENT_SECRET, or a file named by --kafka-sasl-oauth-client-secret-file)")))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(c.OAuthExtensions)) {
			if err := checkOAuthExtension(k, c.OAuthExtensions[k]); err != nil {
				errs = append(errs, c.keyErr("kafka.oauthExtensions", err))
			}
		}
	case mechMSKIAM:
		if c.AWSAccessKeyID == "" {
			errs = append(errs, c.keyErr("kafka.awsAccessKeyId", errors.New("SASL AWS_MSK_IAM needs an access key id (AWS_ACCESS_KEY_ID, or --kafka-aws-access-key-id)")))
		}
		if c.AWSSecretAccessKey == "" {
			errs = append(errs, c.keyErr("kafka.awsSecretAccessKey", errors.New("SASL AWS_MSK_IAM needs a secret access key (AWS_SECRET_ACCESS_KEY, or a file named by --kafka-aws-secret-access-key-file)")))
		}
		// MSK's IAM listener (port 9098) speaks TLS only; without it
		// the broker closes the connection, which reads as an EOF.
		if !c.TLS && c.TLSCAFile == "" && c.TLSCertFile == "" {
			errs = append(errs, c.keyErr("kafka.tls", errors.New("SASL AWS_MSK_IAM needs TLS: MSK's IAM listener (port 9098) accepts TLS only: set KAFKA_TLS=true (or --kafka-tls)")))
		}
	}
	return errs
}

// checkSASLFiles reads the files the SASL settings name, as every
// connection will: a token file that is missing, empty or not a token is
// a mistake at start-up rather than a failed login later.
func (c *Config) checkSASLFiles() error {
	if strings.ToUpper(c.SASLMechanism) != mechOAuth || c.OAuthTokenFile == "" {
		return nil
	}
	if _, err := readTokenFile(c.OAuthTokenFile); err != nil {
		return c.keyErr("kafka.oauthTokenFile", err)
	}
	return nil
}

// saslMechanism is the configured mechanism, nil for none.
func (c *Config) saslMechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		return plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism(), nil
	case mechOAuth:
		ext := maps.Clone(c.OAuthExtensions)
		if c.OAuthTokenURL != "" {
			cc := newClientCredentials(c.OAuthTokenURL, c.OAuthClientID, c.OAuthClientSecret, c.OAuthScope)
			return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
				tok, err := cc.Token(ctx)
				if err != nil {
					return oauth.Auth{}, err
				}
				return oauth.Auth{Token: tok, Extensions: ext}, nil
			}), nil
		}
		if c.OAuthTokenFile == "" {
			return oauth.Auth{Token: c.OAuthToken, Extensions: ext}.AsMechanism(), nil
		}
		if err := c.checkSASLFiles(); err != nil {
			return nil, err
		}
		// Read for every connection: a token that Kubernetes (or a
		// sidecar) refreshes in place is picked up without a restart.
		path := c.OAuthTokenFile
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := readTokenFile(path)
			if err != nil {
				return oauth.Auth{}, err
			}
			return oauth.Auth{Token: tok, Extensions: ext}, nil
		}), nil
	case mechMSKIAM:
		// The region comes from the broker's host name; for a host that
		// does not say it (a private DNS alias) franz-go reads AWS_REGION
		// or AWS_DEFAULT_REGION.
		return aws.Auth{AccessKey: c.AWSAccessKeyID, SecretKey: c.AWSSecretAccessKey, SessionToken: c.AWSSessionToken}.AsManagedStreamingIAMMechanism(), nil
	}
	return nil, nil
}

// readTokenFile is the bearer token in the file at path, a trailing
// newline dropped. Its errors name the file, never what it holds.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the OAUTHBEARER token file: %w", err)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if err := checkBearerToken(tok); err != nil {
		return "", fmt.Errorf("OAUTHBEARER token file %s: %w", path, err)
	}
	return tok, nil
}

// checkBearerToken is nil for a token of RFC 6750 section 2.1's b64token
// syntax (letters, digits, -._~+/ then any '='), which a JWT is. The
// error does not quote the token.
func checkBearerToken(tok string) error {
	if tok == "" {
		return errors.New("the token is empty")
	}
	body := strings.TrimRight(tok, "=")
	if body == "" || strings.IndexFunc(body, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/", r))
	}) >= 0 {
		return errors.New("not a bearer token (RFC 6750 section 2.1: letters, digits, -._~+/ and trailing =; without a \"Bearer \" prefix)")
	}
	return nil
}

// checkOAuthExtension is nil for an extension RFC 7628 section 3.1 allows:
// a key of letters, not "auth" (the token's own), and a value of visible
// characters, spaces and tabs (section 3.1 allows CR and LF too, which
// carepipe refuses as more likely a mistake).
func checkOAuthExtension(k, v string) error {
	if k == "" || strings.IndexFunc(k, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0 {
		return fmt.Errorf("extension name %q: use letters only (RFC 7628 section 3.1)", k)
	}
	if k == "auth" {
		return errors.New(`extension name "auth" is the token's own (RFC 7628 section 3.1)`)
	}
	if strings.IndexFunc(v, func(r rune) bool { return !(r == ' ' || r == '\t' || r >= 0x21 && r <= 0x7e) }) >= 0 {
		return fmt.Errorf("extension %s: the value must be visible ASCII characters, spaces and tabs (RFC 7628 section 3.1)", k)
	}
	return nil
}

// ParseOAuthExtensions reads extensions written name=value,name=value (as
// KAFKA_SASL_OAUTH_EXTENSIONS and its flag take them).
func ParseOAuthExtensions(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name=value,name=value", kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// credentialsHint says which settings hold mech's credentials, for an
// error of a login refused.
func credentialsHint(mech string) string {
	switch strings.ToUpper(mech) {
	case mechOAuth:
		return "check the token (KAFKA_SASL_OAUTH_TOKEN, the file KAFKA_SASL_OAUTH_TOKEN_FILE, or what the token endpoint KAFKA_SASL_OAUTH_TOKEN_URL issues): expired, or not for this cluster"
	case mechMSKIAM:
		return "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN, which expires) and the IAM policy's kafka-cluster:Connect"
	}
	return "check KAFKA_USERNAME/KAFKA_PASSWORD"
}
