package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/scimgate/scimgate/admin"
	"github.com/scimgate/scimgate/tokens"
)

// The token management commands' remote forms (see remote.go), and the
// commands that exist for both forms: token report, token inspect, seats.

// ---- service tokens ----

func remoteServiceTokenCreate(ctx context.Context, c *cli, rc *remote, orgName string, spec tokens.ServiceTokenSpec) error {
	if _, err := rc.checkOrg(ctx, orgName); err != nil {
		return err
	}
	var created admin.NewToken
	body := map[string]any{"name": spec.Name, "inactivity_days": spec.InactivityDays}
	if spec.PermissionSets != nil {
		body["permission_sets"] = spec.PermissionSets
	}
	if err := rc.call(ctx, "POST", "/service-tokens", nil, body, &created); err != nil {
		return err
	}
	return c.printNewRemoteToken(&created)
}

func remoteServiceTokenList(ctx context.Context, c *cli, rc *remote, orgName string) error {
	me, err := rc.checkOrg(ctx, orgName)
	if err != nil {
		return err
	}
	stream := c.newTokenStream(tokens.KindService, "no service tokens in org "+quote(me.Org))
	return c.listRemoteTokens(ctx, rc, "/service-tokens", url.Values{}, stream)
}

func remoteServiceTokenEdit(ctx context.Context, c *cli, rc *remote, id string, edit tokens.ServiceTokenEdit) error {
	body := map[string]any{}
	if edit.Name != nil {
		body["name"] = *edit.Name
	}
	if edit.InactivityDays != nil {
		body["inactivity_days"] = *edit.InactivityDays
	}
	if edit.PermissionSets != nil {
		body["permission_sets"] = edit.PermissionSets
	}
	var tok admin.Token
	if err := rc.call(ctx, "PATCH", "/service-tokens/"+url.PathEscape(id), nil, body, &tok); err != nil {
		return err
	}
	return c.printToken(tokenViewOfAPI(&tok))
}

// remoteDone makes a change that answers admin.Done and prints it as the
// local command does; when the token was the command's own, the server's
// message says it no longer works.
func remoteDone(ctx context.Context, c *cli, rc *remote, method, path, id, state, format string) error {
	var done admin.Done
	if err := rc.call(ctx, method, path, nil, nil, &done); err != nil {
		return err
	}
	if done.Self && !c.global.json {
		fmt.Fprintln(c.stdout, done.Message)
		return nil
	}
	return c.printDone(id, state, nil, format, id)
}

func remoteServiceTokenRegenerate(ctx context.Context, c *cli, rc *remote, id string) error {
	var regenerated admin.NewToken
	if err := rc.call(ctx, "POST", "/service-tokens/"+url.PathEscape(id)+"/regenerate", nil, nil, &regenerated); err != nil {
		return err
	}
	return c.printNewRemoteToken(&regenerated)
}

// ---- user tokens ----

func remoteUserTokenCreate(ctx context.Context, c *cli, rc *remote, orgName, userName, name string) error {
	me, err := rc.checkOrg(ctx, orgName)
	if err != nil {
		return err
	}
	if userName != "" && (me.Kind != string(tokens.KindUser) || !strings.EqualFold(userName, me.Name)) {
		return &tokens.Error{Code: tokens.Forbidden, Message: fmt.Sprintf(
			"--user %q: only a person creates a user token, for themselves, and the token this command runs with is %s %q's (leave --user out)",
			userName, kindWord(me.Kind), me.Name)}
	}
	var created admin.NewToken
	if err := rc.call(ctx, "POST", "/user-tokens", nil, map[string]string{"name": name}, &created); err != nil {
		return err
	}
	return c.printNewRemoteToken(&created)
}

func kindWord(kind string) string {
	if kind == string(tokens.KindService) {
		return "service user"
	}
	return "user"
}

func remoteUserTokenList(ctx context.Context, c *cli, rc *remote, orgName, userName string) error {
	me, err := rc.checkOrg(ctx, orgName)
	if err != nil {
		return err
	}
	query := url.Values{}
	empty := "no user tokens in org " + quote(me.Org)
	if userName != "" {
		query.Set("owner", userName)
		empty = fmt.Sprintf("user %q has no tokens", userName)
	}
	return c.listRemoteTokens(ctx, rc, "/user-tokens", query, c.newTokenStream(tokens.KindUser, empty))
}

// ---- audit ----

func remoteAuditList(ctx context.Context, c *cli, rc *remote, orgName string, limit int) error {
	if _, err := rc.checkOrg(ctx, orgName); err != nil {
		return err
	}
	stream := c.newAuditStream()
	query := url.Values{}
	for left := limit; left > 0; {
		query.Set("limit", fmt.Sprint(min(left, tokens.MaxPageSize)))
		var page admin.AuditList
		if err := rc.call(ctx, "GET", "/audit-events", query, nil, &page); err != nil {
			return err
		}
		views := make([]auditView, len(page.Events))
		for i, e := range page.Events {
			views[i] = auditView{ID: e.ID, At: e.At, Org: e.Org, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail}
		}
		if err := stream.add(views); err != nil {
			return err
		}
		left -= len(views)
		if page.NextCursor == nil {
			break
		}
		query.Set("cursor", *page.NextCursor)
	}
	return stream.close()
}

// ---- seats ----

func defineSeats(fs *flag.FlagSet) action {
	orgName := fs.String("org", "", "the org's name (required without --server)")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		if rc != nil {
			if _, err := rc.checkOrg(ctx, *orgName); err != nil {
				return err
			}
			var seats admin.Seats
			if err := rc.call(ctx, "GET", "/seats", nil, nil, &seats); err != nil {
				return err
			}
			return c.printSeats(seats)
		}
		if err := required("--org", *orgName); err != nil {
			return err
		}
		svc, org, err := c.serviceForOrg(ctx, *orgName)
		if err != nil {
			return err
		}
		s, err := svc.Seats(ctx, org.ID)
		if err != nil {
			return err
		}
		return c.printSeats(seatsView{Org: s.OrgName, Seats: s.ActivePeople, ActivePeople: s.ActivePeople,
			PeopleWithActiveTokens: s.PeopleWithActiveTokens, ServiceUsers: s.ServiceUsers, ActiveServiceTokens: s.ActiveServiceTokens})
	}
}

// ---- token report, token inspect ----

var tokenPattern = regexp.MustCompile(tokens.TokenPattern)

// maxInputLine bounds one line of what "token report" reads.
const maxInputLine = 1 << 20

// readTokens finds every scimgate token in r (a log, a file, a list).
// It also returns the first non-empty line, for when no token is found.
func readTokens(r io.Reader) (found []string, firstLine string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxInputLine)
	for sc.Scan() {
		line := sc.Text()
		if firstLine == "" {
			firstLine = strings.TrimSpace(line)
		}
		found = append(found, tokenPattern.FindAllString(line, -1)...)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, "", usagef("a line of the input is longer than %d bytes", maxInputLine)
		}
		return nil, "", fmt.Errorf("read the standard input: %w", err)
	}
	return found, firstLine, nil
}

// promptIfTerminal tells a person at a terminal what the command waits for.
func (c *cli) promptIfTerminal(what string) {
	if f, ok := c.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(c.stderr, what)
		}
	}
}

func defineTokenReport(fs *flag.FlagSet) action {
	foundAt := fs.String("found-at", "", "where the tokens were found (a URL, a file, a log), recorded in the audit trail")
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		c.promptIfTerminal("Paste the text holding the leaked tokens, then press Ctrl-D.")
		found, _, err := readTokens(c.stdin)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return usagef("token report: no scimgate token (sgu_… or sgs_… followed by 38 letters and digits) in the standard input")
		}
		var svc *tokens.Service
		if rc == nil {
			if svc, err = c.service(ctx); err != nil {
				return err
			}
		}
		var report leakReportView
		for start := 0; start < len(found); start += tokens.MaxLeakReportTokens {
			batch := found[start:min(start+tokens.MaxLeakReportTokens, len(found))]
			if rc != nil {
				var res admin.LeakReportResult
				if err := rc.call(ctx, "POST", "/tokens/report", nil, map[string]any{"tokens": batch, "found_at": *foundAt}, &res); err != nil {
					return err
				}
				for _, f := range res.Findings {
					v := leakFindingView{DisplayPrefix: f.DisplayPrefix, Kind: f.Kind, Outcome: f.Outcome, WasLive: f.WasLive}
					if f.Token != nil {
						tv := tokenViewOfAPI(f.Token)
						v.Token = &tv
					}
					report.count(v)
				}
				continue
			}
			leaks := make([]tokens.Leak, len(batch))
			for i, t := range batch {
				leaks[i] = tokens.Leak{Token: t, FoundAt: *foundAt}
			}
			findings, err := svc.ReportLeak(ctx, tokens.Operator, leaks)
			if err != nil {
				return err
			}
			for _, f := range findings {
				v := leakFindingView{DisplayPrefix: f.DisplayPrefix, Kind: string(f.Kind), Outcome: string(f.Outcome), WasLive: f.Outcome.WasLive()}
				if f.Token != nil {
					tv := tokenViewOfInfo(f.Token)
					v.Token = &tv
				}
				report.count(v)
			}
		}
		return c.printLeakReport(&report)
	}
}

func defineTokenInspect(fs *flag.FlagSet) action {
	return func(ctx context.Context, c *cli, _ []string) error {
		rc, err := c.remote()
		if err != nil {
			return err
		}
		c.promptIfTerminal("Paste the token, then press Enter and Ctrl-D.")
		found, first, err := readTokens(c.stdin)
		if err != nil {
			return err
		}
		var plaintext string
		switch len(found) {
		case 0:
			if first == "" {
				return usagef("token inspect: give the token on the standard input, e.g. scimgate token inspect < token.txt")
			}
			plaintext = first // not a token: the answer says why
		case 1:
			plaintext = found[0]
		default:
			return usagef("token inspect: the standard input holds %d tokens: inspect one at a time", len(found))
		}
		if rc != nil {
			var tok admin.Token
			if err := rc.call(ctx, "POST", "/tokens/inspect", nil, map[string]string{"token": plaintext}, &tok); err != nil {
				return err
			}
			return c.printToken(tokenViewOfAPI(&tok))
		}
		svc, err := c.service(ctx)
		if err != nil {
			return err
		}
		info, err := svc.InspectToken(ctx, plaintext)
		if err != nil {
			return err
		}
		return c.printToken(tokenViewOfInfo(info))
	}
}
