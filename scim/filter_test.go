package scim

import (
	"reflect"
	"testing"
)

func TestMatches(t *testing.T) {
	user := testUsers.render(sampleUser())
	tests := []struct {
		filter string
		want   bool
	}{
		{`userName eq "barbara@example.com"`, true},
		{`USERNAME EQ "BARBARA@EXAMPLE.COM"`, true},
		{`userName eq "barbara"`, false},
		{`userName ne "barbara"`, true},
		{`userName co "ara@"`, true},
		{`userName sw "barb"`, true},
		{`userName ew ".com"`, true},
		{`userName gt "a"`, true},
		{`userName lt "a"`, false},
		{`userName pr`, true},
		{`title pr`, false},
		{`externalId eq "ext-1"`, true},
		{`externalId eq "EXT-1"`, false}, // caseExact
		{`id eq "usr_1"`, true},
		{`active eq true`, true},
		{`active eq false`, false},
		{`active eq "true"`, true},
		{`emails eq "babs@jensen.org"`, true},
		{`emails.value eq "BJENSEN@example.com"`, true},
		{`emails.type eq "home"`, true},
		{`emails[type eq "work" and value co "bjensen"]`, true},
		{`emails[type eq "home" and primary eq true]`, false},
		{`emails[type eq "work"] and userName sw "b"`, true},
		{`name.familyName eq "jensen"`, true},
		{`name.formatted eq "Barbara Jensen"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "barbara@example.com"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "usr_boss"`, true},
		{`urn:ietf:params:scim:schemas:extension:Other:2.0:User:employeeNumber eq "701984"`, false},
		{`meta.lastModified gt "2026-01-01T00:00:00Z"`, true},
		{`meta.lastModified gt "2026-01-02T03:04:05+00:00"`, false},
		{`meta.lastModified ge "2026-01-02T04:04:05+01:00"`, true},
		{`meta.resourceType eq "User"`, true},
		{`meta.version eq "W/\"3\""`, true},
		{`not (userName eq "x")`, true},
		{`userName eq "x" or displayName eq "babs jensen"`, true},
		{`userName eq "x" or (displayName eq "y" and active eq true)`, false},
		{`userName eq 5`, false},
		{`userName eq null`, false},
	}
	for _, tt := range tests {
		e, err := parseFilter(tt.filter)
		if err != nil {
			t.Errorf("parse %q: %v", tt.filter, err)
			continue
		}
		if got := matches(e, user, &userShape, ""); got != tt.want {
			t.Errorf("matches(%q) = %t, want %t", tt.filter, got, tt.want)
		}
	}
}

func TestRewriteFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{`emails[type eq "work"].value eq "a@b"`, `emails[type eq "work" and value eq "a@b"]`},
		{`emails[type eq "work"].value eq "a].b@c"`, `emails[type eq "work" and value eq "a].b@c"]`},
		{`emails[type eq "work"].value pr`, `emails[type eq "work" and value pr]`},
		{`emails[type eq "work"].value eq "a" and active eq true`, `emails[type eq "work" and value eq "a"] and active eq true`},
		{`(emails[type eq "work"].value Eq "a")`, `(emails[type eq "work" and value eq "a"])`},
		{`userName eq "x].y eq z"`, `userName eq "x].y eq z"`},
		{`emails[type eq "work"]`, `emails[type eq "work"]`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`emails[type eq "work"].value xx "a"`, `emails[type eq "work"].value xx "a"`},
		{`emails[type eq "work"].`, `emails[type eq "work"].`},
		{`"unterminated ].value eq "x`, `"unterminated ].value eq "x`},
	}
	for _, tt := range tests {
		if got := rewriteFilter(tt.in); got != tt.want {
			t.Errorf("rewriteFilter(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		path string
		want target
		err  bool
	}{
		{"userName", target{attr: "userName"}, false},
		{"name.givenName", target{attr: "name", sub: "givenName"}, false},
		{"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", target{attr: "name", sub: "givenName"}, false},
		{"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:employeeNumber", target{extension: enterpriseUserURN, attr: "employeeNumber"}, false},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", target{extension: enterpriseUserURN}, false},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", target{extension: enterpriseUserURN, attr: "manager", sub: "value"}, false},
		{"urn:example:custom:badge", target{unknown: true}, false},
		{"urn:ietf:params:scim:schemas:core:2.0:User", target{}, true},
		{"", target{}, true},
		{"a b", target{}, true},
		{"x:y", target{}, true},
		{"emails[type eq", target{}, true},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.path, &userShape)
		if (err != nil) != tt.err {
			t.Errorf("parseTarget(%q) error %v, want error %t", tt.path, err, tt.err)
			continue
		}
		got.filter = nil
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseTarget(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
}
