package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// The JSON the command line prints with --json. Field names are snake_case,
// like the configuration; times are RFC 3339 in UTC.

type orgView struct {
	ID                      string    `json:"id"`
	Name                    string    `json:"name"`
	UserTokenInactivityDays int       `json:"user_token_inactivity_days"`
	CreatedAt               time.Time `json:"created_at"`
}

type userView struct {
	ID          string    `json:"id"`
	Org         string    `json:"org"`
	UserName    string    `json:"user_name"`
	DisplayName string    `json:"display_name"`
	Emails      []string  `json:"emails"`
	ExternalID  string    `json:"external_id"`
	Active      bool      `json:"active"`
	CreatedAt   time.Time `json:"created_at"`
}

type deactivatedView struct {
	ID            string `json:"id"`
	Org           string `json:"org"`
	UserName      string `json:"user_name"`
	Active        bool   `json:"active"`
	ExpiredTokens int    `json:"expired_tokens"`
	// Servers: which running servers confirmed that they refuse the tokens.
	Servers *propagationView `json:"servers,omitempty"`
}

// tokenView is a token as listed: never its secret.
type tokenView struct {
	ID              string        `json:"id"`
	Kind            tokens.Kind   `json:"kind"`
	Org             string        `json:"org"`
	Name            string        `json:"name"`
	User            string        `json:"user,omitempty"` // the owner of a user token
	DisplayPrefix   string        `json:"display_prefix"`
	Status          tokens.Status `json:"status"`
	StatusReason    tokens.Reason `json:"status_reason,omitempty"`
	StatusChangedAt time.Time     `json:"status_changed_at"`
	InactivityDays  int           `json:"inactivity_days"`
	// PermissionSets are a service token's; a user token has its owner's.
	PermissionSets []string   `json:"permission_sets,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at"` // null until first used
	UseCount       int64      `json:"use_count"`
	// Servers is set by edit: which running servers confirmed the change.
	Servers *propagationView `json:"servers,omitempty"`
}

// newTokenView is what create and regenerate print: the only output that
// holds a plaintext token.
type newTokenView struct {
	Token string `json:"token"`
	tokenView
}

type auditView struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Org    string    `json:"org"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail"`
}

func tokenViewOf(org string, t *tokens.Token) tokenView {
	v := tokenView{
		ID: t.ID, Kind: t.Kind, Org: org, Name: t.Name, DisplayPrefix: t.DisplayPrefix,
		Status: t.Status, StatusReason: t.StatusReason, StatusChangedAt: t.StatusChangedAt.UTC(),
		InactivityDays: t.InactivityDays, CreatedAt: t.CreatedAt.UTC(), UseCount: t.UseCount,
	}
	if !t.LastUsedAt.IsZero() {
		last := t.LastUsedAt.UTC()
		v.LastUsedAt = &last
	}
	return v
}

func serviceTokenView(org string, st *tokens.ServiceToken) tokenView {
	v := tokenViewOf(org, &st.Token)
	v.PermissionSets = st.PermissionSets
	return v
}

func userTokenView(org, userName string, t *tokens.Token) tokenView {
	v := tokenViewOf(org, t)
	v.User = userName
	return v
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) printOrgs(orgs []tokens.Org, one bool) error {
	views := make([]orgView, 0, len(orgs))
	for _, o := range orgs {
		views = append(views, orgView{ID: o.ID, Name: o.Name, UserTokenInactivityDays: o.UserTokenInactivityDays, CreatedAt: o.CreatedAt.UTC()})
	}
	if c.global.json {
		if one {
			return printJSON(c.stdout, views[0])
		}
		return printJSON(c.stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.stderr, `no orgs yet: "scimgate serve" creates org "default", or run "scimgate org create --name ORG"`)
		return nil
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "NAME\tID\tUSER TOKEN INACTIVITY\tCREATED")
	for _, o := range views {
		fmt.Fprintf(tw, "%s\t%s\t%d days\t%s\n", o.Name, o.ID, o.UserTokenInactivityDays, formatTime(o.CreatedAt))
	}
	return tw.Flush()
}

func (c *cli) printUsers(org *tokens.Org, users []tokens.User, one bool) error {
	views := make([]userView, 0, len(users))
	for _, u := range users {
		emails := make([]string, 0, len(u.Emails))
		for _, e := range u.Emails {
			emails = append(emails, e.Value)
		}
		views = append(views, userView{ID: u.ID, Org: org.Name, UserName: u.UserName, DisplayName: u.DisplayName,
			Emails: emails, ExternalID: u.ExternalID, Active: u.Active, CreatedAt: u.CreatedAt.UTC()})
	}
	if c.global.json {
		if one {
			return printJSON(c.stdout, views[0])
		}
		return printJSON(c.stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintf(c.stderr, "no users in org %q\n", org.Name)
		return nil
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "USER NAME\tDISPLAY NAME\tEMAIL\tACTIVE\tID\tCREATED")
	for _, u := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.UserName, dash(u.DisplayName), dash(strings.Join(u.Emails, ",")),
			yesNo(u.Active), u.ID, formatTime(u.CreatedAt))
	}
	return tw.Flush()
}

// printNewToken prints a token just created or regenerated, with its
// plaintext: the one time anyone sees it.
func (c *cli) printNewToken(v tokenView, secret tokens.Secret) error {
	if c.global.json {
		return printJSON(c.stdout, newTokenView{Token: secret.Plaintext(), tokenView: v})
	}
	if err := printTokenDetails(c.stdout, v, secret.Plaintext()); err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "Save the token now: it is shown only this once, and scimgate keeps only its hash.")
	return nil
}

// printToken prints one token, without its secret.
func (c *cli) printToken(v tokenView) error {
	if c.global.json {
		return printJSON(c.stdout, v)
	}
	if err := printTokenDetails(c.stdout, v, ""); err != nil {
		return err
	}
	if v.Servers != nil {
		fmt.Fprintf(c.stdout, "the change is %s\n", v.Servers.sentence("applied", "applies it"))
	}
	return nil
}

func printTokenDetails(w io.Writer, v tokenView, plaintext string) error {
	tw := newTable(w)
	if plaintext != "" {
		fmt.Fprintf(tw, "token:\t%s\n", plaintext)
	}
	fmt.Fprintf(tw, "id:\t%s\n", v.ID)
	fmt.Fprintf(tw, "kind:\t%s\n", v.Kind)
	fmt.Fprintf(tw, "org:\t%s\n", v.Org)
	fmt.Fprintf(tw, "name:\t%s\n", v.Name)
	if v.User != "" {
		fmt.Fprintf(tw, "user:\t%s\n", v.User)
	}
	fmt.Fprintf(tw, "prefix:\t%s…\n", v.DisplayPrefix)
	fmt.Fprintf(tw, "status:\t%s\n", v.Status)
	if v.Kind == tokens.KindService {
		fmt.Fprintf(tw, "permissions:\t%s\n", dash(strings.Join(v.PermissionSets, ", ")))
	}
	fmt.Fprintf(tw, "expires after:\t%d days unused\n", v.InactivityDays)
	return tw.Flush()
}

func (c *cli) printTokens(views []tokenView, empty string) error {
	if c.global.json {
		return printJSON(c.stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.stderr, empty)
		return nil
	}
	service := views[0].Kind == tokens.KindService
	tw := newTable(c.stdout)
	if service {
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSTATUS\tINACTIVITY\tPERMISSIONS\tLAST USED\tCREATED")
	} else {
		fmt.Fprintln(tw, "ID\tUSER\tNAME\tPREFIX\tSTATUS\tINACTIVITY\tLAST USED\tCREATED")
	}
	for _, v := range views {
		status := string(v.Status)
		if v.StatusReason != "" && string(v.StatusReason) != status {
			status += " (" + string(v.StatusReason) + ")"
		}
		last := "never"
		if v.LastUsedAt != nil {
			last = formatTime(*v.LastUsedAt)
		}
		if service {
			fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%d days\t%s\t%s\t%s\n", v.ID, v.Name, v.DisplayPrefix, status,
				v.InactivityDays, dash(strings.Join(v.PermissionSets, ",")), last, formatTime(v.CreatedAt))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s…\t%s\t%d days\t%s\t%s\n", v.ID, v.User, v.Name, v.DisplayPrefix, status,
				v.InactivityDays, last, formatTime(v.CreatedAt))
		}
	}
	return tw.Flush()
}

// printDone reports a change that has nothing to show but the token's new
// state, and for a revocation, which running servers refuse the token.
func (c *cli) printDone(id, state string, servers *propagationView, format string, args ...any) error {
	if c.global.json {
		return printJSON(c.stdout, doneView{ID: id, Result: state, Servers: servers})
	}
	fmt.Fprintf(c.stdout, format, args...)
	if servers != nil {
		fmt.Fprintf(c.stdout, ": %s", servers.sentence("refused", "refuses it"))
	}
	fmt.Fprintln(c.stdout)
	return nil
}

type doneView struct {
	ID      string           `json:"id"`
	Result  string           `json:"result"`
	Servers *propagationView `json:"servers,omitempty"`
}

func (c *cli) printAudit(events []tokens.AuditEvent, orgNames map[string]string) error {
	views := make([]auditView, 0, len(events))
	for _, e := range events {
		org := orgNames[e.OrgID]
		if org == "" {
			org = e.OrgID
		}
		views = append(views, auditView{ID: e.ID, At: e.At.UTC(), Org: org, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	if c.global.json {
		return printJSON(c.stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.stderr, "no audit events")
		return nil
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "TIME\tORG\tACTOR\tACTION\tTARGET\tDETAIL")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(v.At), v.Org, v.Actor, v.Action, v.Target, v.Detail)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
