// Package scim is scimgate's SCIM 2.0 service provider (RFC 7643, 7644):
// identity providers such as Okta and Microsoft Entra ID push the people and
// groups of an organization to /scim/v2/Users and /scim/v2/Groups, and
// discover what is supported at /scim/v2/Schemas, /scim/v2/ResourceTypes and
// /scim/v2/ServiceProviderConfig.
//
// New returns the handler; mount it at Prefix+"/", with or without the
// prefix stripped.
//
// It is built on github.com/elimity-com/scim, which routes requests,
// validates POST and PUT bodies against the schemas, parses and validates
// filters, and shapes resources and list responses. This package adds
// bearer-token authentication, org scoping, the mapping to the tokens
// domain, filter evaluation and ETags, and takes over where the library
// refuses or misreads what the identity providers send: PATCH is parsed and
// applied here, never by the library; a manager given as a bare id is made
// an object before the library validates it; Entra's
// emails[type eq "work"].value eq "…" filter is rewritten into the grammar;
// POST …/.search runs as the GET it stands for; /ServiceProviderConfig and
// the itemsPerPage of list responses are this package's.
//
// Behaviour worth knowing:
//
//   - Every request needs "Authorization: Bearer <token>" with a token whose
//     permissions include both tokens.PermUsers and tokens.PermGroups; the
//     token's org is the only org a request can see or change.
//   - Attributes outside the published schemas (password, locale, roles,
//     phoneNumbers, custom extensions, …) are dropped from POST and PUT
//     bodies and from PATCH values without a path: never stored, never
//     returned, never an error. A PATCH path naming an attribute that no
//     schema of the resource has, in RFC 7643 or scimgate's extension, is
//     a 400 invalidPath; one naming an RFC 7643 attribute not stored
//     (title, phoneNumbers) is dropped. name.formatted is derived from
//     givenName and familyName.
//   - A person's sites travel in scimgate's User extension (sites.go).
//   - PUT replaces every attribute; one it omits is cleared, except active,
//     which keeps its value (omitting it must not deactivate anyone), and
//     the sites, kept when the body has no extension.
//   - PATCH is bounded (Options.MaxPatchOperations, MaxPatchValues: 413)
//     and costs time linear in its values (patch.go, valuelist.go).
//   - User.groups (read-only) and Group members' display are read in one
//     query a page, unless attributes or excludedAttributes leave them out.
//   - Deactivation (active false by PUT or PATCH, with or without a path,
//     boolean or string) and DELETE go through tokens.Service, which expires
//     the user's tokens in the same transaction and clears the caches
//     before the response is sent.
//   - PATCH of a user answers 200 with the user; PATCH of a group answers
//     204 (what Entra asks for and Okta accepts), or 200 with the group when
//     the request names attributes or excludedAttributes (RFC 7644 3.5.2).
//   - Lists are served by this package (list.go): a filter is answered by
//     the store in SQL where it can be (see pushdown), and the rest of it
//     is evaluated here over at most Options.MaxFilterCandidates resources
//     the store selects (400 tooMany beyond); a filter on an attribute
//     outside the schemas is a 400 invalidFilter. Results come in order of
//     creation unless sortBy says otherwise (userName, displayName,
//     meta.created, meta.lastModified), so pages are stable. A group's
//     members are read only when the response shows them, and can be paged
//     with attributes=members[startIndex=N&count=M].
//   - meta.created and meta.lastModified have milliseconds.
//   - meta.version and the ETag header are W/"<version>"; If-Match on PUT,
//     PATCH and DELETE must match it or the answer is 412.
//   - Errors are SCIM error messages with the scimType RFC 7644 defines;
//     internal errors are logged and answered without their text.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	elimity "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/scimgate/scimgate/tokens"
)

var allowStringValues sync.Once

// Prefix is the path the endpoint is served under.
const Prefix = "/scim/v2"

// Authenticator turns a bearer token into an identity; *tokens.Authenticator
// is the real one. It returns a *tokens.AuthError for a token it refuses and
// any other error when it cannot decide (the store is unavailable).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*tokens.Identity, error)
}

// Options configure the handler. Zero values take the defaults shown.
type Options struct {
	// BaseURL is the public URL of the endpoint, e.g.
	// "https://id.example.com/scim/v2": it starts meta.location, member
	// $ref and the Location header. Default Prefix, a path-absolute
	// reference.
	BaseURL string
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	// Default 1 MiB, what ServiceProviderConfig advertises.
	MaxBodyBytes int64
	// MaxPatchOperations bounds the operations of one PATCH request, and
	// MaxPatchValues the values one PATCH request gives a multi-valued
	// attribute (emails, members, sites), summed over its operations. A
	// request over either is answered 413 saying which. Defaults
	// DefaultMaxPatchOperations and DefaultMaxPatchValues.
	MaxPatchOperations int
	MaxPatchValues     int
	// Logger receives internal errors (never written in a response body).
	// Default: discard.
	Logger *slog.Logger

	// TracerProvider, if set, traces every operation; Propagator reads an
	// incoming traceparent (W3C trace context when nil). MeterProvider, if
	// set, counts operations by resource, method and status.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	MeterProvider  metric.MeterProvider

	// MaxFilterCandidates bounds how many resources a filter that the
	// store cannot answer by itself (one on name.givenName, emails.type,
	// …) is evaluated on in memory, after the store has selected them by
	// the rest of the filter; a filter that leaves more is answered 400
	// tooMany. Default 10,000.
	MaxFilterCandidates int
}

// The default PATCH limits: far above what Okta and Entra send in one
// request (they add members in batches of at most a few hundred), and low
// enough that one request cannot occupy a core for long.
const (
	DefaultMaxPatchOperations = 1000
	DefaultMaxPatchValues     = 10000
)

const (
	defaultMaxBodyBytes = 1 << 20
	// maxPageSize caps count; RFC 7644 lets a server return fewer.
	maxPageSize = 100
)

// New returns the SCIM handler. Mount it under Prefix, with or without the
// prefix stripped: mux.Handle(scim.Prefix+"/", h) and
// mux.Handle(scim.Prefix+"/", http.StripPrefix(scim.Prefix, h)) both work.
func New(svc *tokens.Service, auth Authenticator, opts Options) (http.Handler, error) {
	if svc == nil || auth == nil {
		return nil, errors.New("scim: a tokens.Service and an Authenticator are required")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = Prefix
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || (base.Scheme != "" && base.Host == "") {
		return nil, fmt.Errorf("scim: base URL %q is not a URL such as https://id.example.com%s", opts.BaseURL, Prefix)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBodyBytes
	}
	if opts.MaxPatchOperations <= 0 {
		opts.MaxPatchOperations = DefaultMaxPatchOperations
	}
	if opts.MaxPatchValues <= 0 {
		opts.MaxPatchValues = DefaultMaxPatchValues
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// A process-wide switch of the library, read when it validates POST and
	// PUT bodies: Entra sends booleans as strings ("active": "False"). It is
	// a plain global, so set it once: servers started together would race.
	allowStringValues.Do(func() { schema.SetAllowStringValues(true) })
	h := &handler{svc: svc, auth: auth, opts: opts, log: opts.Logger}
	h.users = &users{h: h}
	h.groups = &groups{h: h}
	resourceTypes := []elimity.ResourceType{
		{
			ID:               optional.NewString("User"),
			Name:             "User",
			Description:      optional.NewString("A person of the organization"),
			Endpoint:         "/Users",
			Schema:           userSchema(),
			SchemaExtensions: []elimity.SchemaExtension{{Schema: enterpriseUserSchema()}, {Schema: scimgateUserSchema()}},
			Handler:          h.users,
		},
		{
			ID:          optional.NewString("Group"),
			Name:        "Group",
			Description: optional.NewString("A group of users; groups grant permission sets"),
			Endpoint:    "/Groups",
			Schema:      groupSchema(),
			Handler:     h.groups,
		},
	}
	// Lists and reads are served here (list.go), from the same types.
	h.resourceTypes = map[string]elimity.ResourceType{}
	for _, rt := range resourceTypes {
		h.resourceTypes[rt.Endpoint] = rt
	}
	h.library, err = elimity.NewServer(&elimity.ServerArgs{
		// handler.ServeHTTP answers for /ServiceProviderConfig (the
		// library's says ETags are unsupported); the library uses
		// MaxResults to cap count.
		ServiceProviderConfig: &elimity.ServiceProviderConfig{
			MaxResults: maxPageSize, SupportFiltering: true, SupportPatch: true,
		},
		ResourceTypes: resourceTypes,
	}, elimity.WithBaseURL(opts.BaseURL), elimity.WithLogger(libraryLogger{opts.Logger}))
	if err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	return instrument(h, opts)
}

type handler struct {
	svc     *tokens.Service
	auth    Authenticator
	opts    Options
	log     *slog.Logger
	library elimity.Server
	users   *users
	groups  *groups
	// resourceTypes are the library's resource types by endpoint.
	resourceTypes map[string]elimity.ResourceType
}

// request is what every resource method needs to know about the caller.
type request struct {
	identity *tokens.Identity
	// failure holds an error whose status the library cannot pass on (see
	// failureWriter).
	failure *failure
	// sites are those a POST or PUT body of a User gives, taken out of it
	// before the library sees it (bodySites); sitesGiven is false when the
	// body says nothing of sites.
	sites      []string
	sitesGiven bool
	// times are those of the resource a POST or PUT answers with (see
	// request.stamp).
	times *resourceTimes
}

type requestKey struct{}

func requestOf(r *http.Request) *request {
	return r.Context().Value(requestKey{}).(*request)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.writeError(w, r, fmt.Errorf("panic serving %s %s: %v", r.Method, r.URL.Path, v))
		}
	}()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")

	identity, err := h.authorize(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	req := &request{identity: identity, failure: &failure{}}
	r = r.Clone(context.WithValue(r.Context(), requestKey{}, req))
	// The library routes on the path below the prefix, from which it also
	// trims "/v2": trimmed the same way, the routes below are the library's.
	r.URL.Path = strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Prefix), "/v2")
	r.URL.RawPath = ""
	r.Body = io.NopCloser(bytes.NewReader(body))

	endpoint, id := splitPath(r.URL.Path)
	resource := endpoint == "/Users" || endpoint == "/Groups"
	// A change names one resource: PUT, PATCH or DELETE of /Users itself
	// has no id either.
	changesOne := r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodDelete
	if resource && id == "" && (strings.HasSuffix(r.URL.Path, "/") && r.Method != http.MethodPost || changesOne) {
		h.writeError(w, r, missingID(endpoint, r.Method))
		return
	}
	if resource && id == ".search" && r.Method == http.MethodPost {
		if err := searchAsQuery(r, endpoint, body); err != nil {
			h.writeError(w, r, err)
			return
		}
		id = ""
	}
	if (endpoint == "" || endpoint == "/") && r.Method == http.MethodGet || endpoint == "/.search" && r.Method == http.MethodPost {
		h.writeError(w, r, acrossResourceTypes(r.Method))
		return
	}
	switch {
	case endpoint == "/ServiceProviderConfig" && id == "":
		h.serveServiceProviderConfig(w, r)
		return
	case resource && r.Method == http.MethodPatch:
		h.servePatch(w, r, endpoint, id, body)
		return
	case resource && id == "" && r.Method == http.MethodGet:
		h.serveList(w, r, endpoint)
		return
	case resource && id != "" && r.Method == http.MethodGet:
		h.serveGet(w, r, endpoint, id)
		return
	case resource && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		if endpoint == "/Users" {
			rest, sites, given, err := bodySites(managerAsObject(body))
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			req.sites, req.sitesGiven = sites, given
			r.Body = io.NopCloser(bytes.NewReader(rest))
		}
		// The library writes meta's times in whole seconds: show them
		// with milliseconds.
		out := &bufferedResponse{header: w.Header(), status: http.StatusOK}
		h.library.ServeHTTP(&failureWriter{ResponseWriter: out, failure: req.failure}, r)
		b := out.body.Bytes()
		if req.times != nil && out.status < 300 {
			b = millisecondMeta(b, req.times)
		}
		w.WriteHeader(out.status)
		w.Write(b)
		return
	}
	if (endpoint == "/Schemas" || endpoint == "/ResourceTypes") && id == "" && r.Method == http.MethodGet {
		// RFC 7644 4: these lists ignore paging and sorting, and a filter
		// SHOULD be refused 403, so that a client cannot take it for
		// applied (the library applied paging and answered a filter with
		// every resource counted and none listed). Their itemsPerPage is
		// the number of resources they hold (3.4.2), as on /Users; the
		// library gave the page size.
		q := r.URL.Query()
		if q.Has("filter") {
			h.writeError(w, r, scimerrors.ScimError{Status: http.StatusForbidden,
				Detail: endpoint + " cannot be filtered (RFC 7644 section 4): read the whole list"})
			return
		}
		for _, name := range []string{"startIndex", "count", "sortBy", "sortOrder"} {
			q.Del(name)
		}
		r.URL.RawQuery = q.Encode()
		out := &bufferedResponse{header: w.Header(), status: http.StatusOK}
		h.library.ServeHTTP(&failureWriter{ResponseWriter: out, failure: req.failure}, r)
		if list, ok := decodedList(out.body.Bytes()); ok && out.status == http.StatusOK {
			resources, _ := list["Resources"].([]any)
			list["itemsPerPage"] = len(resources)
			writeJSON(w, out.status, list)
			return
		}
		w.WriteHeader(out.status)
		w.Write(out.body.Bytes())
		return
	}
	h.library.ServeHTTP(&failureWriter{ResponseWriter: w, failure: req.failure}, r)
}

// decodedList decodes a list response the library wrote.
func decodedList(body []byte) (map[string]any, bool) {
	v, err := decodeJSON(body)
	list, ok := v.(map[string]any)
	return list, err == nil && ok
}

// bufferedResponse keeps a response of the library to correct it.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// missingID answers a request for /Users/ or /Groups/ without an id.
func missingID(endpoint, method string) error {
	what, list := "user", "GET /Users lists the users"
	if endpoint == "/Groups" {
		what, list = "group", "GET /Groups lists the groups"
	}
	return scimerrors.ScimError{Status: http.StatusNotFound,
		Detail: fmt.Sprintf("%s %s/ names no %s: the path needs the %s's id after the slash (%s %s/{id}); %s",
			method, endpoint, what, what, method, endpoint, list)}
}

// acrossResourceTypes answers a query of the root (RFC 7644 3.4.2.1),
// which scimgate does not serve: the library would answer it 400 tooMany,
// which tells the client to narrow a filter that is not the problem.
func acrossResourceTypes(method string) error {
	what := "GET " + Prefix + "/"
	if method == http.MethodPost {
		what = "POST " + Prefix + "/.search"
	}
	return scimerrors.ScimError{Status: http.StatusNotFound,
		Detail: what + ": scimgate does not query every resource type at once: query /Users or /Groups"}
}

// splitPath splits "/Users/abc" into "/Users" and "abc".
func splitPath(p string) (endpoint, id string) {
	if i := strings.IndexByte(strings.TrimPrefix(p, "/"), '/'); i >= 0 {
		return p[:i+1], p[i+2:]
	}
	return p, ""
}

// searchAsQuery turns POST /Users/.search (RFC 7644 3.4.3) into the GET
// query it stands for: the library validates a search's filter without the
// common attributes (id, externalId, meta), a query's with them.
func searchAsQuery(r *http.Request, endpoint string, body []byte) error {
	v, err := decodeJSON(body)
	if err != nil {
		return err
	}
	search, _ := v.(map[string]any)
	schemas, _ := getFold(search, "schemas").([]any)
	if !slices.Contains(schemas, any(searchRequestURN)) {
		return invalidSyntax("schemas must list %s", searchRequestURN)
	}
	q := url.Values{}
	for _, name := range []string{"filter", "startIndex", "count", "attributes", "excludedAttributes", "sortBy", "sortOrder"} {
		switch v := getFold(search, name).(type) {
		case nil:
		case string:
			q.Set(name, v)
		case json.Number:
			q.Set(name, v.String())
		case []any:
			var list []string
			for _, item := range v {
				s, ok := item.(string)
				if !ok {
					return invalidValue("%s must list attribute names", name)
				}
				list = append(list, s)
			}
			q.Set(name, strings.Join(list, ","))
		default:
			return invalidValue("%s has the wrong type", name)
		}
	}
	r.Method = http.MethodGet
	r.URL.Path = endpoint
	r.URL.RawQuery = q.Encode()
	return nil
}

// missingPermissionError refuses a token that cannot provision.
type missingPermissionError struct{ permission string }

func (e *missingPermissionError) Error() string {
	return fmt.Sprintf("the token lacks the permission %s: SCIM provisioning needs both %s and %s",
		e.permission, tokens.PermUsers, tokens.PermGroups)
}

// authorize authenticates the bearer token and checks that it may provision.
func (h *handler) authorize(r *http.Request) (*tokens.Identity, error) {
	token, present := bearerToken(r.Header.Get("Authorization"))
	switch {
	case !present:
		return nil, tokens.ErrNoToken
	case token == "":
		return nil, tokens.ErrMalformedToken // another scheme, or nothing after "Bearer"
	}
	identity, err := h.auth.Authenticate(r.Context(), token)
	if err != nil {
		var authErr *tokens.AuthError
		if errors.As(err, &authErr) {
			return nil, err
		}
		return nil, &unavailableError{fmt.Errorf("authenticate: %w", err)}
	}
	for _, p := range []string{tokens.PermUsers, tokens.PermGroups} {
		if !identity.Has(p) {
			return nil, &missingPermissionError{permission: p}
		}
	}
	return identity, nil
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

func (req *request) actor() tokens.Actor {
	return tokens.TokenActor(req.identity.TokenID, req.identity.OwnerName)
}

func (req *request) orgID() string { return req.identity.OrgID }

// location is the URL of a resource.
func (h *handler) location(endpoint, id string) string {
	return h.opts.BaseURL + endpoint + "/" + url.PathEscape(id)
}

// libraryLogger hands the library's error logs to slog.
type libraryLogger struct{ log *slog.Logger }

func (l libraryLogger) Error(args ...any) {
	if len(args) == 0 {
		return
	}
	msg, _ := args[0].(string)
	l.log.Error("scim library: "+msg, args[1:]...)
}
