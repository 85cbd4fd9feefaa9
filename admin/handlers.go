package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// handle adapts a handler that returns its error; the error is answered as
// a problem.
func (a *api) handle(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

// authed is handle for a handler that needs an authenticated caller.
func (a *api) authed(h func(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		m, err := a.authenticate(r)
		if err != nil {
			return err
		}
		return h(w, r, m)
	})
}

// authenticate checks the request's bearer token and returns the
// management of its caller.
func (a *api) authenticate(r *http.Request) (*tokens.Manager, error) {
	token, present := bearerToken(r.Header.Get("Authorization"))
	switch {
	case !present:
		return nil, tokens.ErrNoToken
	case token == "":
		return nil, tokens.ErrMalformedToken // another scheme, or nothing after "Bearer"
	}
	id, err := a.auth.Authenticate(r.Context(), token)
	if err != nil {
		var authErr *tokens.AuthError
		if errors.As(err, &authErr) {
			return nil, err
		}
		return nil, fmt.Errorf("authenticate: %w (%w)", tokens.ErrUnavailable, err)
	}
	return a.svc.As(tokens.CallerOf(id)), nil
}

// bearerToken returns the token of an Authorization header and whether the
// header was there at all. The scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (token string, present bool) {
	if header == "" {
		return "", false
	}
	const scheme = "bearer "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", true
	}
	return strings.TrimSpace(header[len(scheme):]), true
}

func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, "application/json", http.StatusOK, v)
	return nil
}

func created(w http.ResponseWriter, location string, v any) error {
	w.Header().Set("Location", location)
	writeJSON(w, "application/json", http.StatusCreated, v)
	return nil
}

// noQuery refuses query parameters on an endpoint that takes none.
func noQuery(r *http.Request) error {
	_, err := parseQuery(r)
	return err
}

// ---- Who am I ----

func (a *api) handleMe(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	p, err := m.Me(r.Context())
	if err != nil {
		return err
	}
	me := Me{Kind: string(p.Kind), Org: p.OrgName, OrgID: p.OrgID, ID: p.ID, Name: p.Name,
		Groups: p.Groups, PermissionSets: p.PermissionSets, Permissions: p.Permissions}
	if p.Token != nil {
		t := tokenOf(p.Token)
		me.Token = &t
	}
	if p.Kind == tokens.KindUser {
		me.UserTokens = &UserTokenCount{Active: p.ActiveUserTokens, Max: p.MaxUserTokens}
	} else {
		me.Groups = []string{}
	}
	return ok(w, me)
}

func (a *api) handleOwnTokenRevoke(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	info, err := m.RevokeOwnToken(r.Context())
	if err != nil {
		return err
	}
	return ok(w, selfDone(info))
}

func selfDone(info *tokens.TokenInfo) Done {
	if info.Kind == tokens.KindService {
		return Done{ID: info.ID, Result: "revoked", Self: true,
			Message: fmt.Sprintf("service token %s (%s…) is revoked: the token this request was made with no longer works; an admin can regenerate it", info.ID, info.DisplayPrefix)}
	}
	return Done{ID: info.ID, Result: "deleted", Self: true,
		Message: fmt.Sprintf("user token %s (%s…) is deleted: the token this request was made with no longer works", info.ID, info.DisplayPrefix)}
}

// ---- User tokens ----

// tokenQuery reads the query parameters of a token listing.
func tokenQuery(r *http.Request, withOwner bool) (tokens.TokenQuery, error) {
	known := []string{"status", "name_prefix", "cursor", "limit"}
	if withOwner {
		known = append(known, "owner", "owner_id")
	}
	q, err := parseQuery(r, known...)
	if err != nil {
		return tokens.TokenQuery{}, err
	}
	limit, err := q.limit()
	if err != nil {
		return tokens.TokenQuery{}, err
	}
	return tokens.TokenQuery{Status: tokens.Status(q.get("status")), OwnerName: q.get("owner"), OwnerID: q.get("owner_id"),
		NamePrefix: q.get("name_prefix"), Cursor: q.get("cursor"), Limit: limit}, nil
}

func (a *api) handleUserTokenList(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	q, err := tokenQuery(r, true)
	if err != nil {
		return err
	}
	page, err := m.UserTokens(r.Context(), q)
	if err != nil {
		return err
	}
	return ok(w, tokenList(page))
}

type userTokenCreate struct {
	Name string `json:"name"`
}

func (a *api) handleUserTokenCreate(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var body userTokenCreate
	if err := a.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	info, secret, err := m.CreateUserToken(r.Context(), body.Name)
	if err != nil {
		return err
	}
	return created(w, Prefix+"/user-tokens/"+url.PathEscape(info.ID), NewToken{Secret: secret.Plaintext(), Token: tokenOf(info)})
}

func (a *api) handleUserTokenGet(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	info, err := m.UserToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, tokenOf(info))
}

func (a *api) handleUserTokenDelete(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	self, err := m.DeleteUserToken(r.Context(), id)
	if err != nil {
		return err
	}
	done := Done{ID: id, Result: "deleted", Self: self, Message: fmt.Sprintf("user token %s is deleted: it is refused from now on", id)}
	if self {
		done.Message = fmt.Sprintf("user token %s is deleted: the token this request was made with no longer works", id)
	}
	return ok(w, done)
}

// ---- Service tokens ----

func (a *api) handleServiceTokenList(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	q, err := tokenQuery(r, false)
	if err != nil {
		return err
	}
	page, err := m.ServiceTokens(r.Context(), q)
	if err != nil {
		return err
	}
	return ok(w, tokenList(page))
}

type serviceTokenCreate struct {
	Name string `json:"name"`
	// InactivityDays is 31, 45, 60 or 180; absent means 45.
	InactivityDays int `json:"inactivity_days"`
	// PermissionSets absent (or null) means every set the caller may grant.
	PermissionSets []string `json:"permission_sets"`
}

func (a *api) handleServiceTokenCreate(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var body serviceTokenCreate
	if err := a.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	info, secret, err := m.CreateServiceToken(r.Context(), tokens.ServiceTokenSpec{
		Name: body.Name, InactivityDays: body.InactivityDays, PermissionSets: body.PermissionSets})
	if err != nil {
		return err
	}
	return created(w, Prefix+"/service-tokens/"+url.PathEscape(info.ID), NewToken{Secret: secret.Plaintext(), Token: tokenOf(info)})
}

func (a *api) handleServiceTokenGet(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	info, err := m.ServiceToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, tokenOf(info))
}

// serviceTokenEdit is a PATCH: absent fields stay as they are.
type serviceTokenEdit struct {
	Name           *string      `json:"name"`
	InactivityDays *int         `json:"inactivity_days"`
	PermissionSets optionalList `json:"permission_sets"`
}

// optionalList tells an absent list from an explicit null: json calls
// UnmarshalJSON only for a field that is there, null included.
type optionalList struct {
	given bool
	null  bool
	value []string
}

func (o *optionalList) UnmarshalJSON(data []byte) error {
	o.given = true
	if string(data) == "null" {
		o.null = true
		return nil
	}
	if err := json.Unmarshal(data, &o.value); err != nil {
		return newProblem("invalid_request", "field \"permission_sets\" must be an array of set names, such as [\"reader\"]")
	}
	return nil
}

func (a *api) handleServiceTokenEdit(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var body serviceTokenEdit
	if err := a.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	edit := tokens.ServiceTokenEdit{Name: body.Name, InactivityDays: body.InactivityDays}
	if ps := body.PermissionSets; ps.given {
		if ps.null {
			return newProblem("invalid_request", "permission_sets must be an array of set names ([] for none), not null")
		}
		edit.PermissionSets = ps.value
		if edit.PermissionSets == nil {
			edit.PermissionSets = []string{}
		}
	}
	if edit.Name == nil && edit.InactivityDays == nil && !body.PermissionSets.given {
		return newProblem("invalid_request", "nothing to change: give name, inactivity_days or permission_sets")
	}
	info, err := m.EditServiceToken(r.Context(), r.PathValue("id"), edit)
	if err != nil {
		return err
	}
	return ok(w, tokenOf(info))
}

func (a *api) handleServiceTokenRevoke(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	self, err := m.RevokeServiceToken(r.Context(), id)
	if err != nil {
		return err
	}
	done := Done{ID: id, Result: "revoked", Self: self, Message: fmt.Sprintf("service token %s is revoked: it is refused from now on; regenerate or delete it", id)}
	if self {
		done.Message = fmt.Sprintf("service token %s is revoked: the token this request was made with no longer works; an admin can regenerate it", id)
	}
	return ok(w, done)
}

func (a *api) handleServiceTokenRegenerate(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	info, secret, err := m.RegenerateServiceToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, NewToken{Secret: secret.Plaintext(), Token: tokenOf(info)})
}

func (a *api) handleServiceTokenDelete(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := m.DeleteServiceToken(r.Context(), id); err != nil {
		return err
	}
	return ok(w, Done{ID: id, Result: "deleted", Message: fmt.Sprintf("service token %s and its service user are deleted", id)})
}

// ---- Permission sets, audit, seats ----

func (a *api) handlePermissionSets(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	sets, err := m.PermissionSets(r.Context())
	if err != nil {
		return err
	}
	list := PermissionSetList{PermissionSets: make([]PermissionSet, len(sets))}
	for i, s := range sets {
		list.PermissionSets[i] = PermissionSet{Name: s.Name, Permissions: emptyIfNil(s.Permissions), Grantable: s.Grantable, Missing: emptyIfNil(s.Missing)}
	}
	return ok(w, list)
}

func (a *api) handleAuditList(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	q, err := parseQuery(r, "target", "action", "cursor", "limit")
	if err != nil {
		return err
	}
	limit, err := q.limit()
	if err != nil {
		return err
	}
	page, err := m.Audit(r.Context(), tokens.AuditQuery{Target: q.get("target"), Action: q.get("action"), Cursor: q.get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	list := AuditList{Events: make([]AuditEvent, len(page.Events))}
	for i, e := range page.Events {
		list.Events[i] = AuditEvent{ID: e.ID, At: e.At.UTC(), Org: page.OrgName, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail}
	}
	if page.Next != "" {
		list.NextCursor = &page.Next
	}
	return ok(w, list)
}

func (a *api) handleSeats(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	s, err := m.Seats(r.Context())
	if err != nil {
		return err
	}
	return ok(w, Seats{Org: s.OrgName, Seats: s.ActivePeople, ActivePeople: s.ActivePeople,
		PeopleWithActiveTokens: s.PeopleWithActiveTokens, ServiceUsers: s.ServiceUsers, ActiveServiceTokens: s.ActiveServiceTokens})
}

// ---- Leak report, inspect ----

type leakReport struct {
	Tokens []string `json:"tokens"`
	// FoundAt says where the tokens were found: a URL, a file, a log.
	FoundAt string `json:"found_at"`
}

// reportLeaks reports leaks as the request's caller: the token's owner
// when the request has a token, an anonymous reporter (rate-limited, named
// by the client's address) when it has none.
func (a *api) reportLeaks(r *http.Request, leaks []tokens.Leak) ([]tokens.LeakFinding, error) {
	if _, present := bearerToken(r.Header.Get("Authorization")); present {
		m, err := a.authenticate(r)
		if err != nil {
			return nil, err
		}
		return m.ReportLeak(r.Context(), leaks)
	}
	if a.opts.AnonymousLeakReportsPerSecond == 0 {
		return nil, newProblem("unauthenticated", "leak reports without a token are turned off on this server (admin.anonymous_leak_reports_per_second is 0): report with any active token")
	}
	if a.anonymous != nil {
		if wait := a.anonymous.take(); wait > 0 {
			p := newProblem("rate_limited", "too many leak reports without a token: try again in %d seconds, or report with a token", wait)
			p.retryAfter = wait
			return nil, p
		}
	}
	return a.svc.ReportLeak(r.Context(), tokens.AnonymousReporter(clientAddress(r)), leaks)
}

// clientAddress names where a request came from, for the audit trail: the
// connection's address, and what a proxy in front says it forwarded for
// (recorded as a claim, not trusted).
func clientAddress(r *http.Request) string {
	from := r.RemoteAddr
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		from += " (forwarded for " + fwd + ")"
	}
	return from
}

func (a *api) handleLeakReport(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var body leakReport
	if err := a.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	leaks := make([]tokens.Leak, len(body.Tokens))
	for i, t := range body.Tokens {
		leaks[i] = tokens.Leak{Token: t, FoundAt: body.FoundAt}
	}
	findings, err := a.reportLeaks(r, leaks)
	if err != nil {
		return err
	}
	result := LeakReportResult{Findings: make([]LeakFinding, len(findings))}
	for i, f := range findings {
		lf := LeakFinding{DisplayPrefix: f.DisplayPrefix, Kind: string(f.Kind), Outcome: string(f.Outcome), WasLive: f.Outcome.WasLive()}
		if f.Token != nil {
			t := tokenOf(f.Token)
			lf.Token = &t
		}
		result.Findings[i] = lf
		switch {
		case f.Outcome.WasLive():
			result.Live++
		case f.Outcome == tokens.LeakAlreadyDead:
			result.AlreadyDead++
		case f.Outcome == tokens.LeakUnknown:
			result.Unknown++
		default:
			result.Malformed++
		}
	}
	return ok(w, result)
}

// gitHubMatch is one match GitHub secret scanning posts: a JSON array of
// them. Fields GitHub may add later are ignored.
type gitHubMatch struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// handleGitHubLeakReport takes GitHub secret scanning's partner-program
// payload and answers with its feedback format: true_positive for a token
// of this scimgate (live, now stopped, or already dead), false_positive for
// anything else. The token is named by its SHA-256, never echoed.
func (a *api) handleGitHubLeakReport(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var matches []gitHubMatch
	if err := a.decodeBody(w, r, &matches, true); err != nil {
		return err
	}
	leaks := make([]tokens.Leak, len(matches))
	for i, m := range matches {
		where := m.URL
		if where == "" {
			where = "GitHub"
		}
		if m.Source != "" {
			where += " (" + m.Source + ", reported by GitHub secret scanning)"
		} else {
			where += " (reported by GitHub secret scanning)"
		}
		leaks[i] = tokens.Leak{Token: m.Token, FoundAt: where}
	}
	findings, err := a.reportLeaks(r, leaks)
	if err != nil {
		return err
	}
	feedback := make([]GitHubFeedback, len(findings))
	for i, f := range findings {
		sum := sha256.Sum256([]byte(matches[i].Token))
		label := "false_positive"
		if f.Outcome.WasLive() || f.Outcome == tokens.LeakAlreadyDead {
			label = "true_positive"
		}
		feedback[i] = GitHubFeedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: matches[i].Type, Label: label}
	}
	return ok(w, feedback)
}

type inspectRequest struct {
	Token string `json:"token"`
}

func (a *api) handleInspect(w http.ResponseWriter, r *http.Request, m *tokens.Manager) error {
	if err := noQuery(r); err != nil {
		return err
	}
	var body inspectRequest
	if err := a.decodeBody(w, r, &body, false); err != nil {
		return err
	}
	info, err := m.InspectToken(r.Context(), body.Token)
	if err != nil {
		return err
	}
	return ok(w, tokenOf(info))
}
