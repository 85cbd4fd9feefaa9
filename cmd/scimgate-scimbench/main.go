// Command scimgate-scimbench times the SCIM requests that identity
// providers make of a large org against a running scimgate, and prints one
// line per request: the median and 90th percentile of its latency over
// --runs runs (after one warm-up), the totalResults and the size of the
// answer. scim/loadtest/run.sh runs it against the real binary on
// databases filled by scimgate-fill, at several sizes, on both databases.
//
//	scimgate-scimbench --url http://127.0.0.1:8081/scim/v2 --token sgs_… --label "sqlite 100000"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "scimgate-scimbench: %v\n", err)
		os.Exit(1)
	}
}

type bench struct {
	base   string
	token  string
	client *http.Client
}

// listAnswer is what the bench reads of a ListResponse.
type listAnswer struct {
	TotalResults int `json:"totalResults"`
	Resources    []struct {
		ID         string `json:"id"`
		ExternalID string `json:"externalId"`
		Meta       struct {
			LastModified string `json:"lastModified"`
		} `json:"meta"`
	} `json:"Resources"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scimgate-scimbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8081/scim/v2", "the SCIM endpoint")
	token := fs.String("token", os.Getenv("SCIMGATE_SCIM_TOKEN"), "a token with platform.users and platform.groups (env SCIMGATE_SCIM_TOKEN)")
	runs := fs.Int("runs", 9, "timed runs of each request (after one warm-up)")
	label := fs.String("label", "", "printed at the start of each line (database and size)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("--token is required")
	}
	b := &bench{base: strings.TrimRight(*base, "/"), token: *token, client: &http.Client{Timeout: 5 * time.Minute}}

	// What the requests need to know of the data, read untimed.
	var all listAnswer
	if _, _, err := b.get(ctx, "/Users?count=1", &all); err != nil {
		return err
	}
	n := all.TotalResults
	if n < 2 {
		return fmt.Errorf("the org has %d users: fill it first (scimgate-fill)", n)
	}
	var middle listAnswer
	if _, _, err := b.get(ctx, fmt.Sprintf("/Users?count=1&startIndex=%d", n/2), &middle); err != nil {
		return err
	}
	var sw listAnswer
	if _, _, err := b.get(ctx, "/Users?count=0&filter="+url.QueryEscape(`userName sw "a"`), &sw); err != nil {
		return err
	}
	var recent listAnswer
	if _, _, err := b.get(ctx, fmt.Sprintf("/Users?count=1&sortBy=meta.lastModified&sortOrder=descending&startIndex=%d", max(1, n/100)), &recent); err != nil {
		return err
	}
	var groups listAnswer
	if _, _, err := b.get(ctx, "/Groups?excludedAttributes=members&count=1", &groups); err != nil {
		return err
	}

	type request struct{ name, path string }
	requests := []request{
		{"userName sw", "/Users?count=100&filter=" + url.QueryEscape(`userName sw "a"`)},
		{"userName sw, deep page", fmt.Sprintf("/Users?count=100&startIndex=%d&filter=%s", max(1, sw.TotalResults-99), url.QueryEscape(`userName sw "a"`))},
		{"emails.value co", "/Users?count=100&filter=" + url.QueryEscape(`emails.value co "@example"`)},
		{"externalId eq", "/Users?filter=" + url.QueryEscape(`externalId eq "`+middle.Resources[0].ExternalID+`"`)},
		{"userName eq (Okta)", "/Users?startIndex=1&count=100&filter=" + url.QueryEscape(`userName eq "nobody@example.com"`)},
		{"emails[type eq work] (Entra)", "/Users?filter=" + url.QueryEscape(`emails[type eq "work"].value eq "nobody@example.com"`)},
		{"page 1", "/Users?startIndex=1&count=100"},
		{"deepest page", fmt.Sprintf("/Users?startIndex=%d&count=100", max(1, n-99))},
		{"sortBy userName, middle", fmt.Sprintf("/Users?sortBy=userName&startIndex=%d&count=100", n/2)},
		{"lastModified gt (1 %)", "/Users?count=100&filter=" + url.QueryEscape(`meta.lastModified gt "`+recent.Resources[0].Meta.LastModified+`"`)},
	}
	if len(groups.Resources) > 0 {
		requests = append(requests,
			request{"Groups, no members", "/Groups?excludedAttributes=members"},
			request{"Groups, with members", "/Groups"},
			request{"Group, 1000 members", "/Groups/" + groups.Resources[0].ID + "?attributes=" + url.QueryEscape("members[startIndex=1&count=1000]")})
	}
	for _, req := range requests {
		var times []time.Duration
		var total, size int
		for i := range *runs + 1 {
			var ans listAnswer
			d, bytes, err := b.get(ctx, req.path, &ans)
			if err != nil {
				return fmt.Errorf("%s: %w", req.name, err)
			}
			if i > 0 {
				times = append(times, d)
			}
			total, size = ans.TotalResults, bytes
		}
		slices.Sort(times)
		p50, p90 := times[len(times)/2], times[min(len(times)-1, len(times)*9/10)]
		fmt.Fprintf(stdout, "%s\t%s\t%.2f\t%.2f\t%d\t%d\n", *label, req.name, ms(p50), ms(p90), total, size)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// get times one request and decodes its answer into v; it returns the
// time to the last byte and the size of the body.
func (b *bench) get(ctx context.Context, path string, v any) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	start := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 0, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	return d, len(body), nil
}
