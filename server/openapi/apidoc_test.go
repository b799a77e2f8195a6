package openapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/server/openapi"
	"github.com/getkin/kin-openapi/openapi3"
)

var update = flag.Bool("update", false, "rewrite docs/api.md from the document")

// apiDoc is docs/api.md, rendered from the document.
var apiDoc = filepath.Join("..", "..", "docs", "api.md")

// TestAPIDocIsCurrent fails when docs/api.md is not the rendering of the
// document (go test ./server/openapi -update rewrites it).
func TestAPIDocIsCurrent(t *testing.T) {
	got := renderMarkdown(t, document(t))
	if *update {
		if err := os.WriteFile(apiDoc, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatalf("%v (go test ./server/openapi -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the rendering of server/openapi/openapi.json: run go test ./server/openapi -update", apiDoc)
	}
}

// pathOrder lists the document's paths in the order it writes them.
func pathOrder(t *testing.T) []string {
	t.Helper()
	var raw struct {
		Paths json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &raw); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Paths))
	dec.Token() // {
	var out []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func renderMarkdown(t *testing.T, d *openapi3.T) []byte {
	t.Helper()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# HTTP API\n\n")
	p("<!-- Rendered from server/openapi/openapi.json by `go test ./server/openapi -update`; edit the document, not this page. -->\n\n")
	p("A running server serves its OpenAPI %s document at `GET /openapi.json`. The test suite\n", d.OpenAPI)
	p("replays its requests (the P21 golden exchanges, the OAuth2 and forward-auth tests) against a\n")
	p("real server and validates every request and answer against the document, so it describes\n")
	p("what the server does. Wire details beyond the schemas: [p21.md](p21.md), [oauth2.md](oauth2.md),\n")
	p("[gateway.md](gateway.md).\n\n")
	p("%s\n\n", d.Info.Description)

	type op struct {
		method, path string
		o            *openapi3.Operation
	}
	byTag := map[string][]op{}
	var envoy []string
	for _, path := range pathOrder(t) {
		item := d.Paths.Value(path)
		for _, m := range methodOrder {
			o := item.GetOperation(m)
			if o == nil {
				continue
			}
			if path == "/auth/envoy/{path}" {
				envoy = append(envoy, m)
				if m != "GET" {
					continue
				}
			}
			if m == "HEAD" {
				continue
			}
			byTag[o.Tags[0]] = append(byTag[o.Tags[0]], op{m, path, o})
		}
	}
	p("## Endpoints\n\n| method | path | summary |\n|---|---|---|\n")
	for _, tag := range d.Tags {
		for _, o := range byTag[tag.Name] {
			m := o.method
			if o.path == "/auth/envoy/{path}" {
				m = "any"
			}
			p("| %s | [`%s`](#%s) | %s |\n", m, o.path, anchor(o.o.OperationID), strings.TrimSuffix(o.o.Summary, " (GET)"))
		}
	}
	p("\n")
	for _, tag := range d.Tags {
		p("## %s\n\n%s\n\n", tag.Name, tag.Description)
		for _, o := range byTag[tag.Name] {
			m := o.method
			if o.path == "/auth/envoy/{path}" {
				m = strings.Join(envoy, ", ")
			} else if d.Paths.Value(o.path).Head != nil {
				m += ", HEAD"
			}
			p("<a id=\"%s\"></a>\n### %s `%s`\n\n", anchor(o.o.OperationID), m, o.path)
			p("**%s** (`%s`)", strings.TrimSuffix(o.o.Summary, " (GET)"), o.o.OperationID)
			if o.o.Deprecated {
				p(" — *deprecated*")
			}
			p("\n\n")
			if o.o.Description != "" {
				p("%s\n\n", o.o.Description)
			}
			if o.o.Security != nil {
				var alts []string
				for _, req := range *o.o.Security {
					if len(req) == 0 {
						alts = append(alts, "client credentials in the body")
					}
					for name := range req {
						alts = append(alts, "`"+name+"`")
					}
				}
				p("Authentication: %s.\n\n", strings.Join(alts, " or "))
			}
			params := append(openapi3.Parameters{}, d.Paths.Value(o.path).Parameters...)
			params = append(params, o.o.Parameters...)
			if len(params) > 0 {
				p("| parameter | in | type | description |\n|---|---|---|---|\n")
				for _, pr := range params {
					p("| `%s` | %s | %s | %s |\n", pr.Value.Name, pr.Value.In, schemaType(pr.Value.Schema), cellText(pr.Value.Description))
				}
				p("\n")
			}
			if rb := o.o.RequestBody; rb != nil {
				p("Request body:")
				for _, ct := range sortedKeys(rb.Value.Content) {
					p(" `%s` %s", ct, schemaType(rb.Value.Content[ct].Schema))
				}
				p(".\n\n")
			}
			p("| status | answer | body |\n|---|---|---|\n")
			for _, code := range sortedKeys(o.o.Responses.Map()) {
				desc, bodies := response(o.o.Responses.Value(code))
				p("| %s | %s | %s |\n", code, desc, bodies)
			}
			p("\n")
		}
	}
	p("## Shared responses\n\n| response | answer | body |\n|---|---|---|\n")
	for _, name := range sortedKeys(d.Components.Responses) {
		desc, bodies := response(&openapi3.ResponseRef{Value: d.Components.Responses[name].Value})
		p("| <a id=\"response-%s\"></a>%s | %s | %s |\n", strings.ToLower(name), name, desc, bodies)
	}
	p("\n")
	p("## Schemas\n\n")
	for _, name := range sortedKeys(d.Components.Schemas) {
		s := d.Components.Schemas[name]
		p("<a id=\"schema-%s\"></a>\n### %s\n\n", strings.ToLower(name), name)
		if s.Ref != "" {
			p("The same as %s.\n\n", schemaType(&openapi3.SchemaRef{Ref: s.Ref}))
			continue
		}
		v := s.Value
		if v.Description != "" {
			p("%s\n\n", v.Description)
		}
		if len(v.OneOf) > 0 {
			var alts []string
			for _, a := range v.OneOf {
				alts = append(alts, schemaType(a))
			}
			p("One of %s.\n\n", strings.Join(alts, ", "))
		}
		if v.XML != nil && v.XML.Name != "" {
			p("XML root element `<%s>`.\n\n", v.XML.Name)
		}
		if len(v.Properties) == 0 {
			continue
		}
		p("| field | type | required | description |\n|---|---|---|---|\n")
		for _, f := range propertyOrder(t, name, v) {
			ps := v.Properties[f]
			p("| `%s` | %s | %s | %s |\n", f, schemaType(ps), yes(slices.Contains(v.Required, f)), cellText(ps.Value.Description))
		}
		if v.AdditionalProperties.Has != nil && !*v.AdditionalProperties.Has {
			p("\nNo other fields.\n")
		}
		p("\n")
	}
	return []byte(strings.TrimRight(b.String(), "\n") + "\n")
}

// propertyOrder lists a schema's properties in the document's order.
func propertyOrder(t *testing.T, name string, v *openapi3.Schema) []string {
	t.Helper()
	var raw struct {
		Components struct {
			Schemas map[string]struct {
				Properties json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document(), &raw); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Components.Schemas[name].Properties))
	dec.Token()
	var out []string
	for dec.More() {
		k, _ := dec.Token()
		out = append(out, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	if len(out) != len(v.Properties) {
		t.Fatalf("schema %s: properties out of order", name)
	}
	return out
}

// response describes a response for a table row: a shared one by a link,
// another by its description, headers and bodies.
func response(r *openapi3.ResponseRef) (desc, bodies string) {
	if r.Ref != "" {
		name := r.Ref[strings.LastIndex(r.Ref, "/")+1:]
		return "[" + name + "](#response-" + strings.ToLower(name) + ")", ""
	}
	v := r.Value
	desc = cellText(*v.Description)
	if hs := sortedKeys(v.Headers); len(hs) > 0 {
		desc += " Headers: `" + strings.Join(hs, "`, `") + "`."
	}
	var bs []string
	for _, ct := range sortedKeys(v.Content) {
		bs = append(bs, "`"+ct+"` "+schemaType(v.Content[ct].Schema))
	}
	return desc, strings.Join(bs, "<br>")
}

func anchor(opID string) string { return "op-" + strings.ToLower(opID) }

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// cellText is text fit for a table cell: one line, no bare pipes.
func cellText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}

// schemaType names a schema briefly: a link to a component, or its type.
func schemaType(s *openapi3.SchemaRef) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
		return "[" + name + "](#schema-" + strings.ToLower(name) + ")"
	}
	v := s.Value
	if v == nil || v.Type == nil {
		return ""
	}
	typ := strings.Join(v.Type.Slice(), " or ")
	switch {
	case v.Type.Is("array") && v.Items != nil:
		typ = "array of " + schemaType(v.Items)
	case v.Const != nil:
		typ = fmt.Sprintf("%s `%v`", typ, v.Const)
	case len(v.Enum) > 0:
		var vals []string
		for _, e := range v.Enum {
			vals = append(vals, fmt.Sprintf("`%v`", e))
		}
		typ += " (" + strings.Join(vals, ", ") + ")"
	case v.Format != "":
		typ += " (" + v.Format + ")"
	}
	return typ
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
