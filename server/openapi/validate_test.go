package openapi_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/server/openapi"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

var (
	docOnce sync.Once
	doc     *openapi3.T
	docErr  error
)

// loadDocument loads and validates the embedded document once.
func loadDocument() (*openapi3.T, error) {
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, docErr = loader.LoadFromData(openapi.Document())
		if docErr == nil {
			docErr = doc.Validate(loader.Context)
		}
		if docErr != nil {
			docErr = fmt.Errorf("the OpenAPI document is not valid: %w", docErr)
		}
	})
	return doc, docErr
}

func document(t testing.TB) *openapi3.T {
	t.Helper()
	d, err := loadDocument()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	reachedMu sync.Mutex
	reachedOp = map[string]bool{}
)

// reached reports whether a replayed request reached the operation
// "METHOD /path".
func reached(op string) bool {
	reachedMu.Lock()
	defer reachedMu.Unlock()
	return reachedOp[op]
}

func init() {
	openapi3filter.RegisterBodyDecoder("application/xml", decodeXML)
}

// decodeXML reads the flat XML documents gatehouse answers (TokenResponse,
// ErrorResponse) as an object of their child elements, so that the
// document's XML schemas can judge them: the root element must be the
// schema's xml name, children hold text only, none appears twice, and a
// child the schema types as an integer must be one.
func decodeXML(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	if schema == nil || schema.Value == nil || schema.Value.XML == nil || schema.Value.XML.Name == "" {
		return nil, errors.New("the schema of an XML body names no root element")
	}
	dec := xml.NewDecoder(body)
	dec.Strict = true
	out := map[string]any{}
	depth := 0
	var name string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				if el.Name.Local != schema.Value.XML.Name {
					return nil, fmt.Errorf("root element <%s>, want <%s>", el.Name.Local, schema.Value.XML.Name)
				}
			case 2:
				name = el.Name.Local
				text.Reset()
			default:
				return nil, fmt.Errorf("element <%s> nested in <%s>", el.Name.Local, name)
			}
		case xml.CharData:
			if depth == 2 {
				text.Write(el)
			}
		case xml.EndElement:
			if depth == 2 {
				if _, dup := out[name]; dup {
					return nil, fmt.Errorf("element <%s> appears twice", name)
				}
				var v any = text.String()
				if p := schema.Value.Properties[name]; p != nil && p.Value != nil && p.Value.Type.Is("integer") {
					n, err := strconv.ParseInt(text.String(), 10, 64)
					if err != nil {
						return nil, fmt.Errorf("element <%s> is not an integer", name)
					}
					v = n
				}
				out[name] = v
			}
			depth--
		}
	}
	return out, nil
}

// exchange is one request the suite sent and the answer it got.
type exchange struct {
	req      *http.Request
	reqBody  []byte
	status   int
	header   http.Header
	respBody []byte
}

// route finds the operation of a request as gatehouse routes it: paths
// case-insensitively and with or without a trailing slash; everything
// after /auth/envoy/ is the Envoy endpoint's path parameter.
func route(d *openapi3.T, method, path string) (*routers.Route, map[string]string, bool) {
	lower := strings.ToLower(path)
	tmpl, params := strings.TrimSuffix(lower, "/"), map[string]string{}
	if rest, ok := strings.CutPrefix(lower, "/auth/envoy/"); ok {
		tmpl, params["path"] = "/auth/envoy/{path}", path[len(path)-len(rest):]
	}
	item := d.Paths.Value(tmpl)
	if item == nil {
		return nil, nil, false
	}
	op := item.GetOperation(method)
	if op == nil {
		return &routers.Route{Spec: d, Path: tmpl, PathItem: item, Method: method}, params, true
	}
	return &routers.Route{Spec: d, Path: tmpl, PathItem: item, Method: method, Operation: op}, params, true
}

// validate checks an exchange against the document: the request (when
// validRequest: the suite also sends malformed requests on purpose, whose
// answers alone are judged) and the response, whose status must be one
// the operation documents. Requests to paths the document does not list
// (the gateway's) and methods an endpoint does not answer must get a
// documented error body.
func validate(t *testing.T, name string, x exchange, validRequest bool) {
	t.Helper()
	for _, p := range problems(t, name, x, validRequest) {
		t.Error(p)
	}
}

// problems is validate's findings.
func problems(t *testing.T, name string, x exchange, validRequest bool) []string {
	t.Helper()
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	d := document(t)
	rt, params, found := route(d, x.req.Method, x.req.URL.Path)
	if !found || rt.Operation == nil {
		// Unknown paths are the gateway's; a method an endpoint does not
		// answer is 405, except at forward-auth, which answers a proxy
		// nothing but 200, 401 and 403.
		want, allow := http.StatusNotFound, false
		if found {
			want, allow = http.StatusMethodNotAllowed, true
			if strings.HasPrefix(rt.Path, "/auth/") {
				want, allow = http.StatusForbidden, false
			}
		}
		if validRequest {
			errorf("%s: %s %s is not in the document", name, x.req.Method, x.req.URL.Path)
		}
		if found && x.status != want {
			errorf("%s: %s on %s answered %d, want %d", name, x.req.Method, rt.Path, x.status, want)
		}
		if allow && x.header.Get("Allow") == "" {
			errorf("%s: 405 without Allow", name)
		}
		if x.status >= 400 {
			if p := errorProblem(d, name, x); p != "" {
				errorf("%s", p)
			}
		}
		return out
	}
	reachedMu.Lock()
	reachedOp[rt.Method+" "+rt.Path] = true
	reachedMu.Unlock()
	req := x.req.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(x.reqBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if validRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			errorf("%s: request %s %s does not match the document: %v", name, x.req.Method, x.req.URL.Path, err)
		}
	} else if x.status < 400 || x.status >= 500 && x.status != http.StatusServiceUnavailable {
		errorf("%s: a malformed request answered %d", name, x.status)
	}
	resp := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.status, Header: x.header,
		Body:    io.NopCloser(bytes.NewReader(x.respBody)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: x.req.Method == http.MethodHead}}
	if err := openapi3filter.ValidateResponse(context.Background(), resp); err != nil {
		errorf("%s: response %d to %s %s does not match the document: %v\n%s", name, x.status, x.req.Method, x.req.URL.Path, err, x.respBody)
	}
	return out
}

// errorProblem checks an error body against the document's Error (or
// ErrorXML) schema; "" when it matches.
func errorProblem(d *openapi3.T, name string, x exchange) string {
	mt, _, _ := mime.ParseMediaType(x.header.Get("Content-Type"))
	var v any
	var schema *openapi3.Schema
	var err error
	switch mt {
	case "application/json":
		schema = d.Components.Schemas["Error"].Value
		err = jsonUnmarshal(x.respBody, &v)
	case "application/xml":
		ref := d.Components.Schemas["ErrorXML"]
		schema = ref.Value
		v, err = decodeXML(bytes.NewReader(x.respBody), nil, ref, nil)
	default:
		return fmt.Sprintf("%s: error body of type %q: %s", name, mt, x.respBody)
	}
	if err == nil {
		err = schema.VisitJSON(v, openapi3.EnableJSONSchema2020())
	}
	if err != nil {
		return fmt.Sprintf("%s: %d body is not a documented error: %v\n%s", name, x.status, err, x.respBody)
	}
	return ""
}

// TestValidatorHasTeeth: answers that differ from the document in the
// ways drift would — an extra field, a field renamed, an undocumented
// status, a missing header, XML with the JSON name — are caught.
func TestValidatorHasTeeth(t *testing.T) {
	post := func(path, accept string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://gatehouse"+path, strings.NewReader(`{"username":"a","password":"b"}`))
		r.Header.Set("Content-Type", "application/json")
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		return r
	}
	jsonH := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	xmlH := http.Header{"Content-Type": {"application/xml; charset=utf-8"}}
	cases := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
	}{
		{"extra field", post("/api/security/token/v2", ""), 200, jsonH,
			`{"AccessToken":"x","RefreshToken":"y","ExpiresInSeconds":1,"TokenType":"Bearer","Extra":1}`},
		{"renamed field", post("/api/security/token/v2", ""), 200, jsonH,
			`{"AccessToken":"x","RefreshToken":"y","ExpiresIn":1,"TokenType":"Bearer"}`},
		{"XML with the JSON name", post("/api/security/token/v2", "application/xml"), 200, xmlH,
			`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<TokenResponse><AccessToken>x</AccessToken><TokenType>Bearer</TokenType><ExpiresInSeconds>1</ExpiresInSeconds><RefreshToken>y</RefreshToken></TokenResponse>`},
		{"undocumented status", post("/api/security/token/v2", ""), 418, jsonH, `{"error":"x","error_description":"y"}`},
		{"429 without Retry-After", post("/api/security/token/v2", ""), 429, jsonH, `{"error":"slow_down","error_description":"y"}`},
		{"error without description", post("/oauth/token", ""), 400, jsonH, `{"error":"invalid_request"}`},
	}
	for _, c := range cases {
		x := exchange{req: c.req, reqBody: []byte(`{"username":"a","password":"b"}`), status: c.status, header: c.header, respBody: []byte(c.body)}
		if len(problems(t, c.name, x, false)) == 0 {
			t.Errorf("%s: the validator accepted it", c.name)
		}
	}
}
