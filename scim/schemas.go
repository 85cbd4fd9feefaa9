package scim

import (
	"net/http"
	"slices"
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

	// scimgateUserURN is scimgate's extension of User: a person's sites. It
	// has the shape Microsoft Entra requires of a custom extension
	// (urn:ietf:params:scim:schemas:extension:<name>:2.0:User:<attribute>).
	scimgateUserURN = "urn:ietf:params:scim:schemas:extension:scimgate:2.0:User"
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
			schema.ComplexCoreAttribute(schema.ComplexParams{
				Name:        "groups",
				Description: optional.NewString("The groups the user is a member of; change them through the Group resource."),
				MultiValued: true,
				Mutability:  schema.AttributeMutabilityReadOnly(),
				SubAttributes: []schema.SimpleParams{
					schema.SimpleStringParams(schema.StringParams{Name: "value", CaseExact: true, Mutability: schema.AttributeMutabilityReadOnly(),
						Description: optional.NewString("The id of the Group.")}),
					schema.SimpleReferenceParams(schema.ReferenceParams{Name: "$ref", ReferenceTypes: []schema.AttributeReferenceType{"Group"},
						Mutability:  schema.AttributeMutabilityReadOnly(),
						Description: optional.NewString("The URI of the Group.")}),
					schema.SimpleStringParams(schema.StringParams{Name: "display", Mutability: schema.AttributeMutabilityReadOnly(),
						Description: optional.NewString("The displayName of the Group.")}),
				},
			}),
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

// scimgateUserSchema is the extension that carries a person's sites, for
// Okta custom attributes (a string array) and Entra attribute mappings (a
// string, comma-separated for several sites).
func scimgateUserSchema() schema.Schema {
	return schema.Schema{
		ID:          scimgateUserURN,
		Name:        optional.NewString("ScimgateUser"),
		Description: optional.NewString("What scimgate forwards of a person besides the core and enterprise attributes"),
		Attributes: []schema.CoreAttribute{
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name:        "sites",
				MultiValued: true,
				Description: optional.NewString("The names of the sites the user is a member of, compared without regard to letter case. " +
					"A string value may list several, separated by commas; a site name cannot contain a comma. " +
					"Sites the organization does not have are created on first use, or refused, as scimgate is configured."),
			})),
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
					schema.SimpleStringParams(schema.StringParams{Name: "display", Mutability: schema.AttributeMutabilityReadOnly(),
						Description: optional.NewString("The User's displayName, or its userName when it has none.")}),
				},
			}),
		},
	}
}

// resourceShape is what PATCH and the filters need to know of a resource's
// attributes, by lower-cased name.
type resourceShape struct {
	resource   string   // "User" or "Group", for messages
	core       string   // the core schema URN, which may prefix any path
	extensions []string // extension URNs; their attributes live under the URN
	// names spells each known attribute and sub-attribute the schema's way.
	names       map[string]string
	multiValued map[string]bool
	readOnly    map[string]bool // refused as a PATCH path; ignored in a pathless value
	required    map[string]bool // cannot be removed
	caseExact   map[string]bool // compared with letter case, by dotted name
	// known holds every attribute of the resource's schemas in RFC 7643,
	// stored or not, as a dotted lower-cased name, with "<urn>:" before
	// those of an extension: a PATCH path outside it is an invalidPath.
	known map[string]bool
}

var userShape = resourceShape{
	resource:   "User",
	core:       userURN,
	extensions: []string{enterpriseUserURN, scimgateUserURN},
	names: canonicalNames("id", "externalId", "meta", "schemas", "userName", "name", "givenName", "familyName",
		"formatted", "displayName", "emails", "value", "type", "primary", "display", "active", "groups",
		"employeeNumber", "manager", "$ref", "phoneNumbers", "addresses", "roles", "entitlements", "ims", "photos",
		"x509Certificates", "sites"),
	multiValued: set("emails", "groups", "phonenumbers", "addresses", "roles", "entitlements", "ims", "photos",
		"x509certificates"),
	readOnly:  set("id", "meta", "schemas", "groups"),
	required:  set("username"),
	caseExact: set("id", "externalid", "manager", "manager.value", "meta.version", "groups.value"),
	known: knownAttributes(commonAttributes, "userName", "name", "displayName", "nickName", "profileUrl", "title",
		"userType", "preferredLanguage", "locale", "timezone", "active", "password",
		"emails", "phoneNumbers", "ims", "photos", "entitlements", "roles", "x509Certificates", "addresses", "groups",
		"name.formatted", "name.familyName", "name.givenName", "name.middleName", "name.honorificPrefix", "name.honorificSuffix",
		"emails.value", "emails.display", "emails.type", "emails.primary",
		"phoneNumbers.value", "phoneNumbers.display", "phoneNumbers.type", "phoneNumbers.primary",
		"ims.value", "ims.display", "ims.type", "ims.primary",
		"photos.value", "photos.display", "photos.type", "photos.primary",
		"entitlements.value", "entitlements.display", "entitlements.type", "entitlements.primary",
		"roles.value", "roles.display", "roles.type", "roles.primary",
		"x509Certificates.value", "x509Certificates.display", "x509Certificates.type", "x509Certificates.primary",
		"addresses.formatted", "addresses.streetAddress", "addresses.locality", "addresses.region",
		"addresses.postalCode", "addresses.country", "addresses.type", "addresses.primary",
		"groups.value", "groups.$ref", "groups.display", "groups.type",
		enterpriseUserURN+":employeeNumber", enterpriseUserURN+":costCenter", enterpriseUserURN+":organization",
		enterpriseUserURN+":division", enterpriseUserURN+":department", enterpriseUserURN+":manager",
		enterpriseUserURN+":manager.value", enterpriseUserURN+":manager.$ref", enterpriseUserURN+":manager.displayName",
		scimgateUserURN+":sites"),
}

var groupShape = resourceShape{
	resource:    "Group",
	core:        groupURN,
	names:       canonicalNames("id", "externalId", "meta", "schemas", "displayName", "members", "value", "type", "display", "$ref"),
	multiValued: set("members"),
	readOnly:    set("id", "meta", "schemas"),
	required:    set("displayname"),
	caseExact:   set("id", "externalid", "members", "members.value", "meta.version"),
	known: knownAttributes(commonAttributes, "displayName", "members",
		"members.value", "members.$ref", "members.type", "members.display"),
}

// commonAttributes are those of every resource (RFC 7643 3.1).
var commonAttributes = []string{"id", "externalId", "schemas", "meta", "meta.resourceType", "meta.created",
	"meta.lastModified", "meta.location", "meta.version"}

func knownAttributes(common []string, names ...string) map[string]bool {
	m := make(map[string]bool, len(common)+len(names))
	for _, n := range slices.Concat(common, names) {
		m[strings.ToLower(n)] = true
	}
	return m
}

// knows reports whether t names an attribute of the resource's schemas.
func (s *resourceShape) knows(t target) bool {
	if t.unknown {
		return false
	}
	name := strings.ToLower(t.attr)
	if t.extension != "" {
		if t.attr == "" {
			return true // the whole extension
		}
		name = strings.ToLower(t.extension) + ":" + name
	}
	if t.sub != "" {
		name += "." + strings.ToLower(t.sub)
	}
	return s.known[name]
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
