package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/scimgate/scimgate/tokens"
)

// ---- Integrations → API tokens ----

type apiTokensPage struct {
	basePage
	UserTokens    []tokens.TokenInfo
	UserNext      string
	ServiceTokens []tokens.TokenInfo
	ServiceNext   string
	// ActiveService counts the active service tokens shown; the org may
	// hold at most MaxService.
	ActiveService int
	MaxService    int
	Reveal        *reveal
}

// requireTokens refuses, with a page saying what is missing, a person
// without platform.tokens.
func (c *Console) requireTokens(w http.ResponseWriter, r *http.Request, s *session) bool {
	if s.has(tokens.PermTokens) {
		return true
	}
	c.renderError(w, r, s, http.StatusForbidden, "Not allowed",
		"Managing the organization's API tokens needs the permission platform.tokens, which you do not hold. "+
			"You can manage your own tokens under My API tokens; ask your administrator for more.")
	return false
}

func (c *Console) handleAPITokens(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	q := r.URL.Query()
	users, err := s.mgr.UserTokens(r.Context(), tokens.TokenQuery{Cursor: q.Get("users")})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	services, err := s.mgr.ServiceTokens(r.Context(), tokens.TokenQuery{Cursor: q.Get("services")})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	active, err := s.mgr.ServiceTokens(r.Context(), tokens.TokenQuery{Status: tokens.StatusActive, Limit: tokens.MaxActiveServiceTokens + 1})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &apiTokensPage{basePage: basePage{Title: "API tokens", Section: "integrations", Tab: "api-tokens"},
		UserTokens: users.Tokens, UserNext: users.Next, ServiceTokens: services.Tokens, ServiceNext: services.Next,
		ActiveService: len(active.Tokens), MaxService: tokens.MaxActiveServiceTokens}
	p.Reveal = c.takeReveal(w, r, s)
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, http.StatusOK, "api-tokens", p)
}

// ---- Create API token ----

type newTokenPage struct {
	basePage
	Sets    []tokens.PermissionSet
	Windows []int
	Name    string
	Days    int
	Chosen  []string
	Error   string
}

func (c *Console) newTokenForm(w http.ResponseWriter, r *http.Request, s *session, status int, p *newTokenPage) {
	sets, err := s.mgr.PermissionSets(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p.basePage = basePage{Title: "Create API token", Section: "integrations", Tab: "api-tokens"}
	p.Sets, p.Windows = sets, tokens.ServiceInactivityDays
	if p.Chosen == nil {
		// The seeds: all permissions are selected by default (all the
		// caller may grant).
		for _, set := range sets {
			if set.Grantable {
				p.Chosen = append(p.Chosen, set.Name)
			}
		}
	}
	if p.Days == 0 {
		p.Days = tokens.DefaultInactivityDays
	}
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, status, "new-token", p)
}

func (c *Console) handleNewServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	c.newTokenForm(w, r, s, http.StatusOK, &newTokenPage{})
}

// chosenSets reads the permission-set checkboxes: never nil, so that none
// checked means none, not the default.
func chosenSets(r *http.Request) []string {
	sets := []string{}
	for _, v := range r.PostForm["set"] {
		if v = strings.TrimSpace(v); v != "" {
			sets = append(sets, v)
		}
	}
	return sets
}

func days(r *http.Request) (int, error) {
	v := formValue(r, "days")
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, tokens.Errorf(tokens.Invalid, "choose how many days the token may go unused: 31, 45, 60 or 180, not %q", v)
	}
	return n, nil
}

func (c *Console) handleCreateServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	if err := limitForm(w, r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &newTokenPage{Name: formValue(r, "name"), Chosen: chosenSets(r)}
	n, err := days(r)
	if err == nil {
		p.Days = n
		var info *tokens.TokenInfo
		var secret tokens.Secret
		info, secret, err = s.mgr.CreateServiceToken(r.Context(), tokens.ServiceTokenSpec{
			Name: p.Name, InactivityDays: n, PermissionSets: p.Chosen})
		if err == nil {
			c.showOnce(w, r, s, reveal{TokenID: info.ID, Name: info.Name, Plaintext: secret.Plaintext()}, "/integrations/api-tokens")
			return
		}
	}
	status, _ := errorStatus(err)
	if status == http.StatusUnauthorized || status >= 500 {
		c.fail(w, r, s, err)
		return
	}
	p.Error = message(err)
	c.newTokenForm(w, r, s, status, p)
}

// showOnce sends the browser to the page that shows a new secret once.
func (c *Console) showOnce(w http.ResponseWriter, r *http.Request, s *session, v reveal, to string) {
	if err := c.setReveal(w, r, s, v); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// ---- A service token: view and edit ----

type serviceTokenPage struct {
	basePage
	Token   tokens.TokenInfo
	Sets    []tokens.PermissionSet
	Windows []int
	// Editing: which parts are open for editing ("name", "window",
	// "permissions"); the pencil and the Edit links open them.
	Editing map[string]bool
	Links   map[string]string
	Name    string
	Days    int
	Chosen  []string
	Error   string
}

func (c *Console) serviceTokenForm(w http.ResponseWriter, r *http.Request, s *session, status int, p *serviceTokenPage, editing []string) {
	info, err := s.mgr.ServiceToken(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	sets, err := s.mgr.PermissionSets(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p.basePage = basePage{Title: info.Name, Section: "integrations", Tab: "api-tokens"}
	p.Token, p.Sets, p.Windows = *info, sets, tokens.ServiceInactivityDays
	p.Editing, p.Links = map[string]bool{}, map[string]string{}
	for _, part := range editing {
		if part == "name" || part == "window" || part == "permissions" {
			p.Editing[part] = true
		}
	}
	for _, part := range []string{"name", "window", "permissions"} {
		open := []string{part}
		for e := range p.Editing {
			if e != part {
				open = append(open, e)
			}
		}
		slices.Sort(open)
		p.Links[part] = "?edit=" + url.QueryEscape(strings.Join(open, ","))
	}
	if p.Name == "" {
		p.Name = info.Name
	}
	if p.Days == 0 {
		p.Days = info.InactivityDays
	}
	if p.Chosen == nil {
		p.Chosen = info.PermissionSets
	}
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, status, "service-token", p)
}

func (c *Console) handleServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	var editing []string
	if e := r.URL.Query().Get("edit"); e != "" {
		editing = strings.Split(e, ",")
	}
	c.serviceTokenForm(w, r, s, http.StatusOK, &serviceTokenPage{}, editing)
}

// handleEditServiceToken saves the parts of a service token that the form
// opened for editing: only the fields it sends change.
func (c *Console) handleEditServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	if err := limitForm(w, r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var e tokens.ServiceTokenEdit
	p := &serviceTokenPage{}
	var editing []string
	var err error
	if r.PostForm.Has("name") {
		name := formValue(r, "name")
		e.Name, p.Name = &name, name
		editing = append(editing, "name")
	}
	if r.PostForm.Has("days") {
		var n int
		if n, err = days(r); err == nil {
			e.InactivityDays, p.Days = &n, n
		}
		editing = append(editing, "window")
	}
	if r.PostForm.Has("permissions") { // a hidden field: no box checked still says "none"
		e.PermissionSets = chosenSets(r)
		p.Chosen = e.PermissionSets
		editing = append(editing, "permissions")
	}
	if err == nil {
		var info *tokens.TokenInfo
		if info, err = s.mgr.EditServiceToken(r.Context(), r.PathValue("id"), e); err == nil {
			c.setFlash(w, r, fmt.Sprintf("Changes to “%s” saved. They apply to its very next request.", info.Name))
			http.Redirect(w, r, "/integrations/api-tokens/service/"+url.PathEscape(info.ID), http.StatusSeeOther)
			return
		}
	}
	status, _ := errorStatus(err)
	if status == http.StatusUnauthorized || status >= 500 || status == http.StatusNotFound {
		c.fail(w, r, s, err)
		return
	}
	p.Error = message(err)
	c.serviceTokenForm(w, r, s, status, p, editing)
}

// ---- Revoke, regenerate, delete ----

// afterAction sends the browser back to where the action was taken, with a
// notice, or shows why the action was refused.
func (c *Console) afterAction(w http.ResponseWriter, r *http.Request, s *session, err error, notice, to string) {
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.setFlash(w, r, notice)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// tokenName is a token's name for a notice, or its ID if it cannot be read.
func tokenName(info *tokens.TokenInfo, err error, id string) string {
	if err != nil || info == nil {
		return id
	}
	return info.Name
}

func (c *Console) handleRevokeServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	id := r.PathValue("id")
	info, err := s.mgr.ServiceToken(r.Context(), id)
	if err == nil {
		_, err = s.mgr.RevokeServiceToken(r.Context(), id)
	}
	c.afterAction(w, r, s, err, fmt.Sprintf("“%s” is revoked: integrations using it stop working now. You can regenerate it or delete it.",
		tokenName(info, err, id)), "/integrations/api-tokens")
}

func (c *Console) handleRegenerateServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	info, secret, err := s.mgr.RegenerateServiceToken(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.showOnce(w, r, s, reveal{TokenID: info.ID, Name: info.Name, Plaintext: secret.Plaintext(), Regenerated: true}, "/integrations/api-tokens")
}

func (c *Console) handleDeleteServiceToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	id := r.PathValue("id")
	info, err := s.mgr.ServiceToken(r.Context(), id)
	if err == nil {
		err = s.mgr.DeleteServiceToken(r.Context(), id)
	}
	c.afterAction(w, r, s, err, fmt.Sprintf("“%s” and its service user are deleted.", tokenName(info, err, id)), "/integrations/api-tokens")
}

func (c *Console) handleDeleteUserToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	c.deleteUserToken(w, r, s, "/integrations/api-tokens")
}

func (c *Console) deleteUserToken(w http.ResponseWriter, r *http.Request, s *session, to string) {
	id := r.PathValue("id")
	info, err := s.mgr.UserToken(r.Context(), id)
	var self bool
	if err == nil {
		self, err = s.mgr.DeleteUserToken(r.Context(), id)
	}
	if err == nil && self {
		// The session was opened with this token: it ends with it.
		c.clearSessionCookie(w, r)
		c.toSignIn(w, r, "token")
		return
	}
	c.afterAction(w, r, s, err, fmt.Sprintf("“%s” is deleted: integrations relying on it stop working now.", tokenName(info, err, id)), to)
}

// ---- My API tokens ----

type myTokensPage struct {
	basePage
	Tokens    []tokens.TokenInfo
	Next      string
	Active    int
	Max       int
	Remaining int
	Reveal    *reveal
	Name      string
	Error     string
}

func (c *Console) myTokens(w http.ResponseWriter, r *http.Request, s *session, status int, p *myTokensPage) {
	page, err := s.mgr.UserTokens(r.Context(), tokens.TokenQuery{OwnerID: s.identity.OwnerID, Cursor: r.URL.Query().Get("after")})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	me, err := s.mgr.Me(r.Context()) // the count after this request's change
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p.basePage = basePage{Title: "My API tokens", Section: "my"}
	p.Tokens, p.Next = page.Tokens, page.Next
	p.Active, p.Max = me.ActiveUserTokens, me.MaxUserTokens
	p.Remaining = max(p.Max-p.Active, 0)
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, status, "my-tokens", p)
}

func (c *Console) handleMyTokens(w http.ResponseWriter, r *http.Request, s *session) {
	c.myTokens(w, r, s, http.StatusOK, &myTokensPage{Reveal: c.takeReveal(w, r, s)})
}

func (c *Console) handleCreateMyToken(w http.ResponseWriter, r *http.Request, s *session) {
	if err := limitForm(w, r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	name := formValue(r, "name")
	info, secret, err := s.mgr.CreateUserToken(r.Context(), name)
	if err == nil {
		c.showOnce(w, r, s, reveal{TokenID: info.ID, Name: info.Name, Plaintext: secret.Plaintext()}, "/my/api-tokens")
		return
	}
	status, _ := errorStatus(err)
	if status == http.StatusUnauthorized || status >= 500 {
		c.fail(w, r, s, err)
		return
	}
	c.myTokens(w, r, s, status, &myTokensPage{Name: name, Error: message(err)})
}

func (c *Console) handleDeleteMyToken(w http.ResponseWriter, r *http.Request, s *session) {
	c.deleteUserToken(w, r, s, "/my/api-tokens")
}

// ---- Audit log and seats ----

type auditPage struct {
	basePage
	Events []tokens.AuditEvent
	Next   string
}

func (c *Console) handleAuditLog(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireTokens(w, r, s) {
		return
	}
	page, err := s.mgr.Audit(r.Context(), tokens.AuditQuery{Cursor: r.URL.Query().Get("before"), Limit: 50})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &auditPage{basePage: basePage{Title: "Audit log", Section: "integrations", Tab: "audit-log"}, Events: page.Events, Next: page.Next}
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, http.StatusOK, "audit-log", p)
}

type seatsPage struct {
	basePage
	Seats *tokens.Seats
	Max   int
}

func (c *Console) handleSeats(w http.ResponseWriter, r *http.Request, s *session) {
	seats, err := s.mgr.Seats(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := &seatsPage{basePage: basePage{Title: "Seats", Section: "integrations", Tab: "seats"}, Seats: seats, Max: tokens.MaxActiveServiceTokens}
	c.fill(w, r, s, &p.basePage)
	c.render(w, r, http.StatusOK, "seats", p)
}
