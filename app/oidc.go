package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenEndpointTimeout bounds one token request: kgo asks for a token on
// its client's context, which no request deadline bounds.
const tokenEndpointTimeout = 10 * time.Second

// clientCredentials obtains OAUTHBEARER tokens from an OAuth 2.0 token
// endpoint with the client credentials grant (RFC 6749 section 4.4), as
// a managed Kafka's OIDC provider issues them, and keeps each until
// shortly before it expires.
type clientCredentials struct {
	endpoint, id, secret, scope string
	client                      *http.Client
	now                         func() time.Time

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

func newClientCredentials(endpoint, id, secret, scope string) *clientCredentials {
	return &clientCredentials{
		endpoint: endpoint, id: id, secret: secret, scope: scope,
		client: &http.Client{Timeout: tokenEndpointTimeout},
		now:    time.Now,
	}
}

// tokenEndpointError is a token endpoint refusing carepipe's client
// credentials, or answering what is not a bearer token: no broker would
// accept the login, so it is fatal at start-up.
type tokenEndpointError struct{ msg string }

func (e *tokenEndpointError) Error() string { return e.msg }

// Token is a bearer token, the one held while it has a while to live,
// else a new one from the endpoint.
func (cc *clientCredentials) Token(ctx context.Context) (string, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.token != "" && cc.now().Before(cc.renewAt) {
		return cc.token, nil
	}
	ctx, cancel := context.WithTimeout(ctx, tokenEndpointTimeout)
	defer cancel()
	form := url.Values{"grant_type": {"client_credentials"}}
	if cc.scope != "" {
		form.Set("scope", cc.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cc.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("OAUTHBEARER token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: the id and secret are form-encoded, then
	// sent as HTTP Basic credentials.
	req.SetBasicAuth(url.QueryEscape(cc.id), url.QueryEscape(cc.secret))
	sent := cc.now()
	resp, err := cc.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("OAUTHBEARER token endpoint %s: %w", redactURL(cc.endpoint), err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	decErr := dec.Decode(&body)
	where := "OAUTHBEARER token endpoint " + redactURL(cc.endpoint)
	switch {
	case resp.StatusCode != http.StatusOK:
		// RFC 6749 section 5.2's error code says what to fix; the body
		// is not quoted beyond it.
		msg := fmt.Sprintf("%s answered %s", where, resp.Status)
		if body.Error != "" {
			msg += ": " + body.Error
			if body.Description != "" {
				msg += " (" + body.Description + ")"
			}
		}
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", &tokenEndpointError{msg + ": check the client id and secret (KAFKA_SASL_OAUTH_CLIENT_ID, KAFKA_SASL_OAUTH_CLIENT_SECRET) and the scope"}
		}
		return "", errors.New(msg)
	case decErr != nil:
		return "", &tokenEndpointError{fmt.Sprintf("%s: the answer is not a token response (RFC 6749 section 5.1): %v", where, decErr)}
	case !strings.EqualFold(body.TokenType, "Bearer"):
		return "", &tokenEndpointError{fmt.Sprintf("%s: token type %q, want Bearer", where, body.TokenType)}
	}
	if err := checkBearerToken(body.AccessToken); err != nil {
		return "", &tokenEndpointError{fmt.Sprintf("%s: access_token: %v", where, err)}
	}
	cc.token = body.AccessToken
	// Renewed when a tenth of its lifetime, at most a minute, is left:
	// a connection made just before it expires still logs in. Without
	// expires_in (RFC 6749 calls it recommended), each connection asks.
	life := time.Duration(body.ExpiresIn) * time.Second
	cc.renewAt = sent.Add(life - min(life/10, time.Minute))
	return cc.token, nil
}

// checkTokenURL is nil for an https URL, or an http one to a loopback
// host (a local test identity provider): the client secret travels in it.
func checkTokenURL(u string) error {
	if err := checkURL(u); err != nil {
		return err
	}
	p, _ := url.Parse(u)
	if p.Scheme == "https" {
		return nil
	}
	host := p.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not https: the client secret would travel in clear", redactURL(u))
}
