package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// basePage is what every page's layout shows.
type basePage struct {
	Title string
	// Signed in: who, in which org, and which parts of the console they see.
	Person     string
	Org        string
	ViaToken   string // the display prefix of the token signed in with
	ViaTokenID string
	CanTokens  bool   // platform.tokens: Integrations → API tokens, Audit log
	CanSeats   bool   // platform.users: Seats
	Section    string // "integrations" or "my"
	Tab        string // "api-tokens", "audit-log", "seats"
	Flash      string
	FlashError bool
}

// page is implemented by every page's data.
type page interface{ base() *basePage }

func (b *basePage) base() *basePage { return b }

// fill sets the signed-in part of the layout.
func (c *Console) fill(w http.ResponseWriter, r *http.Request, s *session, b *basePage) {
	if s == nil {
		return
	}
	b.Person = s.profile.Name
	b.Org = s.profile.OrgName
	b.ViaToken, b.ViaTokenID = s.identity.DisplayPrefix, s.identity.TokenID
	b.CanTokens = s.has(tokens.PermTokens)
	b.CanSeats = s.has(tokens.PermUsers)
	if b.Flash == "" {
		b.Flash = c.takeFlash(w, r)
	}
}

var funcs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "Never"
		}
		return t.UTC().Format("2 Jan 2006")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "Never"
		}
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	},
	"iso":         func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":        strings.Join,
	"plural":      plural,
	"statusLabel": statusLabel,
	"statusClass": func(st tokens.Status) string { return string(st) },
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"sub": func(a, b int) int { return a - b },
	"initial": func(s string) string {
		if s == "" {
			return "?"
		}
		return strings.ToUpper(s[:1])
	},
}

// statusLabel is a token's status in words, with the reason it is not active.
func statusLabel(t tokens.TokenInfo) string {
	switch t.Status {
	case tokens.StatusActive:
		return "Active"
	case tokens.StatusRevoked:
		return "Revoked"
	}
	switch t.StatusReason {
	case tokens.ReasonInactivity:
		return fmt.Sprintf("Expired: unused for %d days", t.InactivityDays)
	case tokens.ReasonUserDeactivated:
		return "Expired: user deactivated"
	case tokens.ReasonUserRemoved:
		return "Expired: user left the organization"
	}
	return "Expired"
}

// parseTemplates parses each page with the layout and the partials (files
// named _*.html), so that each page defines its own "content".
func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page; it renders into a buffer first, so that a template
// error is a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t := c.pages[name]
	var buf bytes.Buffer
	if t == nil {
		c.log.ErrorContext(r.Context(), "console: no such template", "template", name)
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("internal error")
	} else if err := t.Execute(&buf, p); err != nil {
		c.log.ErrorContext(r.Context(), "console template", "template", name, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("internal error: the page could not be rendered")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPageData is a page that says what went wrong and what to do.
type errorPageData struct {
	basePage
	Message string
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	c.render(w, r, status, "error", &errorPageData{basePage: basePage{Title: title}, Message: msg})
}

// renderError is errorPage for a signed-in person, inside the layout with
// its navigation.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, status int, title, msg string) {
	p := &errorPageData{basePage: basePage{Title: title}, Message: msg}
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, status, "error", p)
}
