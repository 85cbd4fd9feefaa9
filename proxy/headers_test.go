package proxy

import (
	"net/http"
	"slices"
	"testing"
)

func TestCleanConnection(t *testing.T) {
	n, err := newHeaderNames("X-Scimgate-", nil, nil, "X-Identity-Assertion")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		connection []string
		want       []string // nil: no Connection header left
	}{
		{[]string{"keep-alive"}, []string{"keep-alive"}},
		{[]string{"Upgrade"}, []string{"Upgrade"}},
		{[]string{"X-Scimgate-Org, X-Scimgate-Permissions"}, nil},
		{[]string{"keep-alive, x_scimgate_kind", "Upgrade"}, []string{"keep-alive, Upgrade"}},
		{[]string{"Authorization, X-Identity-Assertion, X-Forwarded-For, X-Original-URL, Remote-User"}, nil},
		{[]string{" , X-Custom-Hop ,"}, []string{" , X-Custom-Hop ,"}}, // nothing protected: untouched
	}
	for _, tt := range tests {
		r := &http.Request{Header: http.Header{"Connection": slices.Clone(tt.connection)}}
		n.clean(r)
		if got := r.Header["Connection"]; !slices.Equal(got, tt.want) {
			t.Errorf("Connection: %q cleaned to %q, want %q", tt.connection, got, tt.want)
		}
	}
}

func TestCleanTrailers(t *testing.T) {
	n, _ := newHeaderNames("X-Scimgate-", nil, nil, "")
	r := &http.Request{Header: http.Header{}, Trailer: http.Header{"X-Scimgate-Name": nil, "Authorization": nil, "X-Checksum": nil}}
	n.clean(r)
	if _, ok := r.Trailer["X-Checksum"]; len(r.Trailer) != 1 || !ok {
		t.Errorf("trailers after cleaning: %v, want only X-Checksum", r.Trailer)
	}
}

func TestCleanDoesNotAllocate(t *testing.T) {
	n, _ := newHeaderNames("X-Scimgate-", nil, nil, DefaultAssertionHeader)
	h := http.Header{
		"Accept": {"*/*"}, "Content-Type": {"application/json"}, "Cookie": {"a=b"}, "Cache-Control": {"no-cache"},
		"X-Request-Id": {"1"}, "Connection": {"keep-alive"}, "Forwarded-Thing": {"x"}, "Remote-Addr": {"x"},
		"X-A-Header-Name-Longer-Than-Ninety-Six-Bytes-To-Check-The-Fallback-Path-Of-The-Normalization-Code-Path": {"x"},
	}
	r := &http.Request{Header: h}
	if a := testing.AllocsPerRun(100, func() { n.clean(r) }); a != 0 {
		t.Errorf("cleaning ordinary headers: %v allocations, want 0", a)
	}
}

func TestSpoofableLongNames(t *testing.T) {
	long := "X-Custom-Identity-Header-With-A-Very-Long-Name-That-Does-Not-Fit-On-The-Stack-Buffer-Of-Ninety-Six"
	n, _ := newHeaderNames("X-Scimgate-", nil, []string{long, "X-Amzn-Oidc-*"}, "")
	for name, want := range map[string]bool{
		long: true,
		"x_custom_identity_header_with_a_very_long_name_that_does_not_fit_on_the_stack_buffer_of_ninety_six": true,
		"X-Scimgate-" + long:  true,
		"X-Amzn-Oidc-" + long: true,
		long + "-Other":       false,
		"X-Request-Id":        false,
	} {
		if got := n.spoofable(name); got != want {
			t.Errorf("spoofable(%q) = %v, want %v", name, got, want)
		}
	}
}

// Other gateways' identity headers are stripped by default, in any spelling.
func TestDefaultStripsGatewayIdentities(t *testing.T) {
	n, _ := newHeaderNames("X-Scimgate-", nil, nil, "")
	for name, want := range map[string]bool{
		"X-Consumer-Username":     true, // Kong
		"x_consumer_custom_id":    true,
		"X-Authenticated-Userid":  true,
		"X-Userinfo":              true,
		"X-Pomerium-Claim-Email":  true,
		"X-Endpoint-API-Userinfo": true, // Google Cloud Endpoints
		"X-WEBAUTH-ROLE":          true, // Grafana
		"Remote-Groups":           true, // Authelia
		"X-Auth-Request-Foo":      true,
		"X-Consumer":              false, // not a prefix match of "X-Consumer-"
		"X-Request-Id":            false,
	} {
		if got := n.spoofable(name); got != want {
			t.Errorf("spoofable(%q) = %v, want %v", name, got, want)
		}
	}
}
