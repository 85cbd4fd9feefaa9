package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/scimgate/scimgate/admin"
	"github.com/scimgate/scimgate/tokens"
)

// The command line works remotely: with a server (--server or
// SCIMGATE_SERVER) the token commands call the admin API with a token
// (--token-file or SCIMGATE_TOKEN; never a flag value, which shell history
// and the process list would show) instead of opening the database. They
// print the same output, --json and exit codes either way.

// remoteHelp is what the usage says about the remote command line.
const remoteHelp = `Remotely: with --server URL (or SCIMGATE_SERVER), the service-token,
user-token, audit, seats and token commands call the admin API of that
scimgate instead of opening the database, as the token read from
--token-file FILE (or SCIMGATE_TOKEN) allows; --org may be left out (it is
the token's). Other commands always open the database.
`

// remoteFlags are the global flags of the remote command line.
type remoteFlags struct {
	server    string
	tokenFile string
	serverCA  string
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.server, "server", r.server, "call the admin API of the scimgate at this URL instead of opening the database (env SCIMGATE_SERVER)")
	fs.StringVar(&r.tokenFile, "token-file", r.tokenFile, "with --server: read the token to call it with from this file (else env SCIMGATE_TOKEN)")
	fs.StringVar(&r.serverCA, "server-ca", r.serverCA, "with --server: trust the server's certificate if this PEM file of CA certificates signed it (env SCIMGATE_SERVER_CA)")
}

// remote is a client of the admin API.
type remote struct {
	base  string // the server's URL, without a trailing slash
	token string
	http  *http.Client
}

// remoteTimeout bounds one call to the server.
const remoteTimeout = 60 * time.Second

// remote returns the admin API client when a server is configured, nil
// when the command is to open the database.
func (c *cli) remote() (*remote, error) {
	server := c.global.server
	if server == "" {
		server = c.getenv("SCIMGATE_SERVER")
	}
	if server == "" {
		return nil, nil
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("--server: %q is not an http or https URL such as https://scimgate.example.com:8081", server)
	}
	token, err := c.remoteToken()
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	caFile := c.global.serverCA
	if caFile == "" {
		caFile = c.getenv("SCIMGATE_SERVER_CA")
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usagef("--server-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--server-ca: %s holds no PEM certificate", caFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &remote{base: strings.TrimRight(u.String(), "/"), token: token,
		http: &http.Client{Transport: transport, Timeout: remoteTimeout}}, nil
}

// remoteToken reads the token of the remote command line.
func (c *cli) remoteToken() (string, error) {
	var token, from string
	switch {
	case c.global.tokenFile != "":
		data, err := os.ReadFile(c.global.tokenFile)
		if err != nil {
			return "", usagef("--token-file: %v", err)
		}
		token, from = strings.TrimSpace(string(data)), "the file "+c.global.tokenFile
	case c.getenv("SCIMGATE_TOKEN") != "":
		token, from = strings.TrimSpace(c.getenv("SCIMGATE_TOKEN")), "SCIMGATE_TOKEN"
	default:
		return "", usagef("--server needs a token: put it in a file given with --token-file, or in SCIMGATE_TOKEN")
	}
	if _, err := tokens.Parse(token); err != nil {
		// Never repeat it: it is a secret, or a typo of one.
		return "", usagef("the token in %s is not a well-formed scimgate token (sgu_ or sgs_ followed by 38 letters and digits)", from)
	}
	return token, nil
}

// call makes one request of the admin API: body (if not nil) is sent as
// JSON, a 2xx answer is decoded into out (if not nil), and any other answer
// becomes an error that exitCode and errorMessage understand.
func (r *remote) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	target := r.base + admin.Prefix + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("cannot reach the scimgate server at %s: %w", r.base, err)
	}
	defer resp.Body.Close()
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && mediaType == "application/json" {
		if out == nil {
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: the server's answer cannot be read: %w", method, path, err)
		}
		return nil
	}
	if mediaType == "application/problem+json" {
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
			Reason string `json:"reason"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p); err == nil && p.Detail != "" {
			return problemError(resp.StatusCode, p.Reason, p.Detail)
		}
	}
	return fmt.Errorf("%s %s: the server answered HTTP %d with %q, not the admin API's JSON: is %s the address of scimgate's admin API (admin.listen, or the management listener)?",
		method, path, resp.StatusCode, mediaType, r.base)
}

// The admin API's problem reasons and the domain codes they stand for, so
// that a refusal exits with the code the local command would.
var problemCodes = map[string]tokens.Code{
	"invalid_request":        tokens.Invalid,
	"body_too_large":         tokens.Invalid,
	"unsupported_media_type": tokens.Invalid,
	"not_found":              tokens.NotFound,
	"conflict":               tokens.Conflict,
	"limit_reached":          tokens.LimitReached,
	"wrong_state":            tokens.WrongState,
	"forbidden":              tokens.Forbidden,
	"unauthenticated":        tokens.Unauthenticated,
}

func problemError(status int, reason, detail string) error {
	if code, ok := problemCodes[reason]; ok {
		return &tokens.Error{Code: code, Message: detail}
	}
	return fmt.Errorf("the server answered HTTP %d: %s", status, detail)
}

// me is the caller the remote command line runs as.
func (r *remote) me(ctx context.Context) (*admin.Me, error) {
	var me admin.Me
	if err := r.call(ctx, "GET", "/me", nil, nil, &me); err != nil {
		return nil, err
	}
	return &me, nil
}

// checkOrg refuses --org naming another org than the token's: a token
// manages its own org only. It returns the token's org.
func (r *remote) checkOrg(ctx context.Context, orgName string) (*admin.Me, error) {
	me, err := r.me(ctx)
	if err != nil {
		return nil, err
	}
	if orgName != "" && orgName != me.Org {
		return nil, usagef("--org %q: the token belongs to org %q, and a token manages its own org only (leave --org out with --server)", orgName, me.Org)
	}
	return me, nil
}

// tokenViewOfAPI is a token of the admin API as the command line prints it.
func tokenViewOfAPI(t *admin.Token) tokenView {
	v := tokenView{
		ID: t.ID, Kind: tokens.Kind(t.Kind), Org: t.Org, Name: t.Name, DisplayPrefix: t.DisplayPrefix,
		Status: tokens.Status(t.Status), StatusReason: tokens.Reason(t.StatusReason), StatusChangedAt: t.StatusChangedAt,
		InactivityDays: t.InactivityDays, PermissionSets: t.PermissionSets, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, UseCount: t.UseCount, ExpiresAt: t.ExpiresAt,
	}
	if v.Kind == tokens.KindUser {
		v.User = t.Owner
	}
	return v
}

// printNewRemoteToken prints a token just created or regenerated by the
// server, as printNewToken does.
func (c *cli) printNewRemoteToken(t *admin.NewToken) error {
	v := tokenViewOfAPI(&t.Token)
	if c.global.json {
		return printJSON(c.stdout, newTokenView{Token: t.Secret, tokenView: v})
	}
	if err := printTokenDetails(c.stdout, v, t.Secret); err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "Save the token now: it is shown only this once, and scimgate keeps only its hash.")
	return nil
}

// listRemoteTokens streams every page of a token listing.
func (c *cli) listRemoteTokens(ctx context.Context, rc *remote, path string, query url.Values, stream *tokenStream) error {
	query.Set("limit", fmt.Sprint(tokens.MaxPageSize))
	for {
		var page admin.TokenList
		if err := rc.call(ctx, "GET", path, query, nil, &page); err != nil {
			return err
		}
		views := make([]tokenView, len(page.Tokens))
		for i := range page.Tokens {
			views[i] = tokenViewOfAPI(&page.Tokens[i])
		}
		if err := stream.add(views); err != nil {
			return err
		}
		if page.NextCursor == nil {
			return stream.close()
		}
		query.Set("cursor", *page.NextCursor)
	}
}

// stdinKey carries the standard input of run in a context, for tests.
type stdinKey struct{}

// withStdin returns a context under which run reads r as its standard input.
func withStdin(ctx context.Context, r io.Reader) context.Context {
	return context.WithValue(ctx, stdinKey{}, r)
}

func stdinOf(ctx context.Context) io.Reader {
	if r, ok := ctx.Value(stdinKey{}).(io.Reader); ok {
		return r
	}
	return os.Stdin
}
