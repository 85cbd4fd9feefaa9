package scim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestLargeOrgStatements is the regression test of issue 14's large-org
// findings, read from the SQL statements a request runs: a filtered list
// used to read the whole org in batches of 500, each with a count whose
// result was thrown away, and GET /Groups read every member even with
// excludedAttributes=members.
func TestLargeOrgStatements(t *testing.T) {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	store, err := sqlstore.Open(ctx, sqltest.SQLitePath(t), sqlstore.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	policy, _ := tokens.NewPolicy(testPolicy)
	svc := tokens.NewService(store, policy)
	auth := tokens.NewAuthenticator(store, policy, tokens.AuthOptions{})
	org, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := svc.CreateServiceToken(ctx, tokens.Operator, org.ID, tokens.ServiceTokenSpec{
		Name: "okta", PermissionSets: []string{tokens.PermUsers, tokens.PermGroups}})
	if err != nil {
		t.Fatal(err)
	}
	// 1,600 users, 1,300 of whose names start with "a"; one group of all.
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var bulk sqlstore.Bulk
	group := tokens.Group{ID: "grp_all", OrgID: org.ID, DisplayName: "All", CreatedAt: at, UpdatedAt: at, Version: 1}
	for i := range 1600 {
		name := fmt.Sprintf("a%04d", i)
		if i%16 < 3 {
			name = fmt.Sprintf("b%04d", i)
		}
		bulk.Users = append(bulk.Users, tokens.User{ID: fmt.Sprintf("usr_%04d", i), OrgID: org.ID, UserName: name,
			Active: true, CreatedAt: at.Add(time.Duration(i) * time.Second), UpdatedAt: at.Add(time.Duration(i) * time.Second), Version: 1})
		group.MemberIDs = append(group.MemberIDs, bulk.Users[i].ID)
	}
	bulk.Groups = []tokens.Group{group}
	if err := store.BulkLoad(ctx, bulk); err != nil {
		t.Fatal(err)
	}
	h, err := New(svc, auth, Options{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (status int, body string, statements []string) {
		spans.Reset()
		rec := httptest.NewRecorder()
		ctx, span := tp.Tracer("test").Start(ctx, "request")
		req := httptest.NewRequestWithContext(ctx, "GET", Prefix+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret.Plaintext())
		h.ServeHTTP(rec, req)
		span.End()
		for _, sp := range spans.Ended() {
			for _, a := range sp.Attributes() {
				if a.Key == "db.query.text" && !strings.HasPrefix(a.Value.AsString(), "BEGIN") {
					statements = append(statements, a.Value.AsString())
				}
			}
		}
		return rec.Code, rec.Body.String(), statements
	}
	count := func(statements []string, substr string) int {
		n := 0
		for _, s := range statements {
			if strings.Contains(s, substr) {
				n++
			}
		}
		return n
	}

	for _, path := range []string{
		"/Users?count=100&filter=" + url.QueryEscape(`userName sw "a"`),
		"/Users?count=100&startIndex=1201&filter=" + url.QueryEscape(`userName sw "a"`),
		"/Users?count=100&startIndex=1501",
	} {
		status, body, statements := get(path)
		if status != http.StatusOK || !strings.Contains(body, `"totalResults":`) {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		// The token's lookup, the page, and one count at most.
		if n := count(statements, "count(*)"); n > 1 {
			t.Errorf("GET %s counted %d times", path, n)
		}
		if n := count(statements, "FROM users"); n > 2 {
			t.Errorf("GET %s read users in %d statements, want 2 at most (a page and a count):\n%s", path, n, strings.Join(statements, "\n"))
		}
	}
	status, body, statements := get("/Groups?excludedAttributes=members")
	if status != http.StatusOK || strings.Contains(body, `"members"`) {
		t.Fatalf("GET /Groups?excludedAttributes=members: %d %s", status, body)
	}
	if n := count(statements, "group_members"); n > 0 {
		t.Errorf("GET /Groups?excludedAttributes=members read members in %d statements", n)
	}

	// meta.lastModified has milliseconds (issue 13, item 7).
	_, body, _ = get("/Users/usr_0001")
	if !regexp.MustCompile(`"lastModified":"2026-01-01T00:00:01\.000Z"`).MatchString(body) {
		t.Errorf("GET /Users/usr_0001: lastModified without milliseconds: %s", body)
	}
}
