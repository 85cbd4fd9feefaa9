package scim

import (
	"net/http"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Schema URNs.
const (
	userURN           = "urn:ietf:params:scim:schemas:core:2.0:User"
	enterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	groupURN          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchOpURN        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	searchRequestURN  = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
)

// The published schemas hold only what the tokens domain stores: the
// library drops every other attribute of a POST or PUT body, and so does
// PATCH here, so that what is accepted is what is kept.

func userSchema() schema.Schema {
	return schema.Schema{
		ID:          userURN,
		Name:        optional.NewString("User"),
		Description: optional.NewString("User Account"),
		Attributes: []schema.CoreAttribute{
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name:        "userName",
				Description: optional.NewString("Unique identifier for the User in its organization, compared without regard to letter case. REQUIRED."),
				Required:    true,
				Uniqueness:  schema.AttributeUniquenessServer(),
			})),
			schema.ComplexCoreAttribute(schema.ComplexParams{
				Name:        "name",
				Description: optional.NewString("The components of the user's real name; formatted is derived from givenName and familyName."),
				SubAttributes: []schema.SimpleParams{
					schema.SimpleStringParams(schema.StringParams{Name: "formatted", Mutability: schema.AttributeMutabilityReadOnly(),
						Description: optional.NewString("givenName and familyName, separated by a space.")}),
					schema.SimpleStringParams(schema.StringParams{Name: "familyName",
						Description: optional.NewString("The family name of the User.")}),
					schema.SimpleStringParams(schema.StringParams{Name: "givenName",
						Description: optional.NewString("The given name of the User.")}),
				},
			}),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name:        "displayName",
				Description: optional.NewString("The name of the User, suitable for display to end-users."),
			})),
			schema.ComplexCoreAttribute(schema.ComplexParams{
				Name:        "emails",
				Description: optional.NewString("Email addresses for the user."),
				MultiValued: true,
				SubAttributes: []schema.SimpleParams{
					schema.SimpleStringParams(schema.StringParams{Name: "value",
						Description: optional.NewString("Email address for the User.")}),
					schema.SimpleStringParams(schema.StringParams{Name: "type", CanonicalValues: []string{"work", "home", "other"},
						Description: optional.NewString("A label indicating the attribute's function, e.g., 'work' or 'home'.")}),
					schema.SimpleBooleanParams(schema.BooleanParams{Name: "primary",
						Description: optional.NewString("Whether this is the primary address; true at most once.")}),
				},
			}),
			schema.SimpleCoreAttribute(schema.SimpleBooleanParams(schema.BooleanParams{
				Name:        "active",
				Description: optional.NewString("Whether the user may use scimgate. Setting it to false expires every token of the user."),
			})),
		},
	}
}

func enterpriseUserSchema() schema.Schema {
	return schema.Schema{
		ID:          enterpriseUserURN,
		Name:        optional.NewString("EnterpriseUser"),
		Description: optional.NewString("Enterprise User"),
		Attributes: []schema.CoreAttribute{
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name:        "employeeNumber",
				Description: optional.NewString("Numeric or alphanumeric identifier assigned to a person."),
			})),
			schema.ComplexCoreAttribute(schema.ComplexParams{
				Name:        "manager",
				Description: optional.NewString("The User's manager; a bare id string is accepted too."),
				SubAttributes: []schema.SimpleParams{
					schema.SimpleStringParams(schema.StringParams{Name: "value", CaseExact: true,
						Description: optional.NewString("The id of the manager's User.")}),
					schema.SimpleReferenceParams(schema.ReferenceParams{Name: "$ref", ReferenceTypes: []schema.AttributeReferenceType{"User"},
						Mutability:  schema.AttributeMutabilityReadOnly(),
						Description: optional.NewString("The URI of the manager's User.")}),
				},
			}),
		},
	}
}

func groupSchema() schema.Schema {
	return schema.Schema{
		ID:          groupURN,
		Name:        optional.NewString("Group"),
		Description: optional.NewString("Group"),
		Attributes: []schema.CoreAttribute{
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name:        "displayName",
				Description: optional.NewString("A human-readable name for the Group, unique in the organization regardless of letter case. REQUIRED."),
				Required:    true,
				Uniqueness:  schema.AttributeUniquenessServer(),
			})),
			schema.ComplexCoreAttribute(schema.ComplexParams{
				Name:        "members",
				Description: optional.NewString("The users in the group (groups cannot be members)."),
				MultiValued: true,
				SubAttributes: []schema.SimpleParams{
					schema.SimpleStringParams(schema.StringParams{Name: "value", CaseExact: true, Mutability: schema.AttributeMutabilityImmutable(),
						Description: optional.NewString("The id of a User.")}),
					schema.SimpleReferenceParams(schema.ReferenceParams{Name: "$ref", ReferenceTypes: []schema.AttributeReferenceType{"User"},
						Mutability:  schema.AttributeMutabilityImmutable(),
						Description: optional.NewString("The URI of the User.")}),
					schema.SimpleStringParams(schema.StringParams{Name: "type", CanonicalValues: []string{"User"},
						Mutability:  schema.AttributeMutabilityImmutable(),
						Description: optional.NewString("Always 'User'.")}),
				},
			}),
		},
	}
}

// resourceShape is what PATCH and the filters need to know of a resource's
// attributes, by lower-cased name.
type resourceShape struct {
	core       string   // the core schema URN, which may prefix any path
	extensions []string // extension URNs; their attributes live under the URN
	// names spells each known attribute and sub-attribute the schema's way.
	names       map[string]string
	multiValued map[string]bool
	readOnly    map[string]bool // refused as a PATCH path; ignored in a pathless value
	required    map[string]bool // cannot be removed
	caseExact   map[string]bool // compared with letter case, by dotted name
}

var userShape = resourceShape{
	core:       userURN,
	extensions: []string{enterpriseUserURN},
	names: canonicalNames("id", "externalId", "meta", "schemas", "userName", "name", "givenName", "familyName",
		"formatted", "displayName", "emails", "value", "type", "primary", "display", "active", "groups",
		"employeeNumber", "manager", "$ref", "phoneNumbers", "addresses", "roles", "entitlements", "ims", "photos",
		"x509Certificates"),
	multiValued: set("emails", "groups", "phonenumbers", "addresses", "roles", "entitlements", "ims", "photos",
		"x509certificates"),
	readOnly:  set("id", "meta", "schemas", "groups"),
	required:  set("username"),
	caseExact: set("id", "externalid", "manager", "manager.value", "meta.version"),
}

var groupShape = resourceShape{
	core:        groupURN,
	names:       canonicalNames("id", "externalId", "meta", "schemas", "displayName", "members", "value", "type", "display", "$ref"),
	multiValued: set("members"),
	readOnly:    set("id", "meta", "schemas"),
	required:    set("displayname"),
	caseExact:   set("id", "externalid", "members", "members.value", "meta.version"),
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func canonicalNames(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}

// spell returns the schema's spelling of an attribute name.
func (s *resourceShape) spell(name string) string {
	if c, ok := s.names[strings.ToLower(name)]; ok {
		return c
	}
	return name
}

// serveServiceProviderConfig answers instead of the library, whose document
// says ETags are unsupported and bulk is limited.
func (h *handler) serveServiceProviderConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		h.writeError(w, r, scimerrors.ScimError{Status: http.StatusMethodNotAllowed,
			Detail: "the service provider configuration can only be read (GET)"})
		return
	}
	config := map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/scimgate/scimgate",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxPageSize},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{
			"type":        "oauthbearertoken",
			"name":        "Bearer token",
			"description": "A scimgate token whose permissions include platform.users and platform.groups, sent as Authorization: Bearer <token>.",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     h.opts.BaseURL + "/ServiceProviderConfig",
		},
	}
	writeJSON(w, http.StatusOK, config)
}
