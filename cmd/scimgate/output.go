package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimgate/scimgate/admin"
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
	Sites       []string  `json:"sites"`
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
	// ExpiresAt is when an active token expires unless used before; null
	// for a token that is not active.
	ExpiresAt *time.Time `json:"expires_at"`
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
	if t.Status == tokens.StatusActive {
		expires := t.InactivityDeadline().UTC()
		v.ExpiresAt = &expires
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
		sites := u.Sites
		if sites == nil {
			sites = []string{}
		}
		views = append(views, userView{ID: u.ID, Org: org.Name, UserName: u.UserName, DisplayName: u.DisplayName,
			Emails: emails, ExternalID: u.ExternalID, Active: u.Active, CreatedAt: u.CreatedAt.UTC(), Sites: sites})
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
	kind := tokens.KindUser
	if len(views) > 0 {
		kind = views[0].Kind
	}
	stream := c.newTokenStream(kind, empty)
	if err := stream.add(views); err != nil {
		return err
	}
	return stream.close()
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
	stream := c.newAuditStream()
	if err := stream.add(auditViews(events, orgNames)); err != nil {
		return err
	}
	return stream.close()
}

func auditViews(events []tokens.AuditEvent, orgNames map[string]string) []auditView {
	views := make([]auditView, 0, len(events))
	for _, e := range events {
		org := orgNames[e.OrgID]
		if org == "" {
			org = e.OrgID
		}
		views = append(views, auditView{ID: e.ID, At: e.At.UTC(), Org: org, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	return views
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

// ---- Streams, and the views of the management commands ----

// listStream prints a listing a page at a time, so that a listing of any
// length takes the memory of one page: --json writes the array element by
// element (the same bytes printJSON writes for the whole slice), a table is
// flushed after each page.
type listStream[T any] struct {
	c      *cli
	header string         // the table's header line, tab-separated
	row    func(T) string // a table row, tab-separated
	empty  string         // said on stderr when there is nothing to list
	n      int
	out    *bufio.Writer // stdout, written once a page
	tw     *tabwriter.Writer
}

func (s *listStream[T]) add(items []T) error {
	if s.out == nil {
		s.out = bufio.NewWriterSize(s.c.stdout, 64<<10)
	}
	if s.c.global.json {
		for _, v := range items {
			b, err := json.MarshalIndent(v, "  ", "  ")
			if err != nil {
				return err
			}
			sep := ",\n  "
			if s.n == 0 {
				sep = "[\n  "
			}
			s.out.WriteString(sep)
			s.out.Write(b)
			s.n++
		}
		return s.out.Flush()
	}
	if len(items) == 0 {
		return nil
	}
	if s.tw == nil {
		s.tw = newTable(s.out)
		fmt.Fprintln(s.tw, s.header)
	}
	for _, v := range items {
		fmt.Fprintln(s.tw, s.row(v))
	}
	s.n += len(items)
	if err := s.tw.Flush(); err != nil {
		return err
	}
	return s.out.Flush()
}

func (s *listStream[T]) close() error {
	switch {
	case s.c.global.json && s.n == 0:
		_, err := fmt.Fprintln(s.c.stdout, "[]")
		return err
	case s.c.global.json:
		_, err := fmt.Fprint(s.c.stdout, "\n]\n")
		return err
	case s.n == 0:
		fmt.Fprintln(s.c.stderr, s.empty)
	}
	return nil
}

type tokenStream = listStream[tokenView]

// newTokenStream lists tokens of one kind.
func (c *cli) newTokenStream(kind tokens.Kind, empty string) *tokenStream {
	if kind == tokens.KindService {
		return &tokenStream{c: c, empty: empty,
			header: "ID\tNAME\tPREFIX\tSTATUS\tINACTIVITY\tPERMISSIONS\tLAST USED\tEXPIRES\tCREATED",
			row: func(v tokenView) string {
				return fmt.Sprintf("%s\t%s\t%s…\t%s\t%d days\t%s\t%s\t%s\t%s", v.ID, v.Name, v.DisplayPrefix, statusText(v),
					v.InactivityDays, dash(strings.Join(v.PermissionSets, ",")), lastUsedText(v), expiresText(v), formatTime(v.CreatedAt))
			}}
	}
	return &tokenStream{c: c, empty: empty,
		header: "ID\tUSER\tNAME\tPREFIX\tSTATUS\tINACTIVITY\tLAST USED\tEXPIRES\tCREATED",
		row: func(v tokenView) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s…\t%s\t%d days\t%s\t%s\t%s", v.ID, dash(v.User), v.Name, v.DisplayPrefix, statusText(v),
				v.InactivityDays, lastUsedText(v), expiresText(v), formatTime(v.CreatedAt))
		}}
}

func statusText(v tokenView) string {
	status := string(v.Status)
	if v.StatusReason != "" && string(v.StatusReason) != status {
		status += " (" + string(v.StatusReason) + ")"
	}
	return status
}

func lastUsedText(v tokenView) string {
	if v.LastUsedAt == nil {
		return "never"
	}
	return formatTime(*v.LastUsedAt)
}

func expiresText(v tokenView) string {
	if v.ExpiresAt == nil {
		return "-"
	}
	return formatTime(*v.ExpiresAt)
}

type auditStream = listStream[auditView]

// newAuditStream lists audit events.
func (c *cli) newAuditStream() *auditStream {
	return &auditStream{c: c, empty: "no audit events",
		header: "TIME\tORG\tACTOR\tACTION\tTARGET\tDETAIL",
		row: func(v auditView) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", formatTime(v.At), v.Org, v.Actor, v.Action, v.Target, v.Detail)
		}}
}

// tokenViewOfInfo is a token as management shows it: its status is the
// one the authenticator applies now.
func tokenViewOfInfo(t *tokens.TokenInfo) tokenView {
	v := tokenView{
		ID: t.ID, Kind: t.Kind, Org: t.OrgName, Name: t.Name, DisplayPrefix: t.DisplayPrefix,
		Status: t.Status, StatusReason: t.StatusReason, StatusChangedAt: t.StatusChangedAt.UTC(),
		InactivityDays: t.InactivityDays, CreatedAt: t.CreatedAt.UTC(), UseCount: t.UseCount,
	}
	if t.Kind == tokens.KindUser {
		v.User = t.OwnerName
	} else {
		v.PermissionSets = t.PermissionSets
	}
	if !t.LastUsedAt.IsZero() {
		last := t.LastUsedAt.UTC()
		v.LastUsedAt = &last
	}
	if !t.ExpiresAt.IsZero() {
		expires := t.ExpiresAt.UTC()
		v.ExpiresAt = &expires
	}
	return v
}

// seatsView is the seats report, as the admin API's GET /seats shows it.
type seatsView = admin.Seats

func (c *cli) printSeats(s seatsView) error {
	if c.global.json {
		return printJSON(c.stdout, s)
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "org:\t%s\n", s.Org)
	fmt.Fprintf(tw, "seats:\t%d\t(every active person)\n", s.Seats)
	fmt.Fprintf(tw, "people with active user tokens:\t%d\n", s.PeopleWithActiveTokens)
	fmt.Fprintf(tw, "service users:\t%d\t(never a seat)\n", s.ServiceUsers)
	fmt.Fprintf(tw, "active service tokens:\t%d\n", s.ActiveServiceTokens)
	return tw.Flush()
}

// leakReportView is what "token report" prints: what became of each token.
type leakReportView struct {
	Findings    []leakFindingView `json:"findings"`
	Live        int               `json:"live"`
	AlreadyDead int               `json:"already_dead"`
	Unknown     int               `json:"unknown"`
	Malformed   int               `json:"malformed"`
}

type leakFindingView struct {
	DisplayPrefix string     `json:"display_prefix"`
	Kind          string     `json:"kind"`
	Outcome       string     `json:"outcome"`
	WasLive       bool       `json:"was_live"`
	Token         *tokenView `json:"token"`
}

func (r *leakReportView) count(f leakFindingView) {
	r.Findings = append(r.Findings, f)
	switch f.Outcome {
	case string(tokens.LeakRevoked), string(tokens.LeakDeleted):
		r.Live++
	case string(tokens.LeakAlreadyDead):
		r.AlreadyDead++
	case string(tokens.LeakUnknown):
		r.Unknown++
	default:
		r.Malformed++
	}
}

func (c *cli) printLeakReport(r *leakReportView) error {
	if r.Findings == nil {
		r.Findings = []leakFindingView{}
	}
	if c.global.json {
		return printJSON(c.stdout, r)
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "PREFIX\tKIND\tOUTCOME\tID\tNAME\tOWNER\tORG")
	for _, f := range r.Findings {
		prefix, kind := "-", dash(f.Kind)
		if f.DisplayPrefix != "" {
			prefix = f.DisplayPrefix + "…"
		}
		id, name, owner, org := "-", "-", "-", "-"
		if t := f.Token; t != nil {
			id, name, org = t.ID, t.Name, t.Org
			owner = dash(t.User)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", prefix, kind, strings.ReplaceAll(f.Outcome, "_", " "), id, name, owner, org)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%d live %s stopped, %d already dead, %d unknown, %d malformed\n",
		r.Live, plural(r.Live, "token", "tokens"), r.AlreadyDead, r.Unknown, r.Malformed)
	return nil
}
