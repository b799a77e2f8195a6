package p21

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

func TestParseV2(t *testing.T) {
	tests := []struct {
		name, ct, body string
		want           Request
		flow           Flow
	}{
		{"seed user", "application/json", `{"username": "api_user", "password": "your_password"}`,
			Request{Username: "api_user", Password: "your_password", HasUsername: true, HasPassword: true}, FlowUser},
		{"seed consumer", "application/json", `{"ClientSecret": "62ccc18a-25e2-440c-bf6d-749c117fa9db", "GrantType": "client_credentials"}`,
			Request{ClientSecret: "62ccc18a-25e2-440c-bf6d-749c117fa9db", GrantType: "client_credentials", HasClientSecret: true, HasGrantType: true}, FlowConsumer},
		{"seed consumer with username", "application/json", `{"ClientSecret": "k", "GrantType": "client_credentials", "username": "api_user"}`,
			Request{ClientSecret: "k", GrantType: "client_credentials", Username: "api_user", HasClientSecret: true, HasGrantType: true, HasUsername: true}, FlowConsumer},
		{"case-insensitive names", "application/json", `{"UserName":"a","PASSWORD":"b"}`,
			Request{Username: "a", Password: "b", HasUsername: true, HasPassword: true}, FlowUser},
		{"snake case is another (unknown) field", "application/json", `{"GrantType":"CLIENT_CREDENTIALS","ClientSecret":"k","grant_type":"password","client_secret":"x","user_name":"u"}`,
			Request{GrantType: "CLIENT_CREDENTIALS", ClientSecret: "k", HasGrantType: true, HasClientSecret: true}, FlowConsumer},
		{"client secret alone", "application/json", `{"ClientSecret":"k"}`,
			Request{ClientSecret: "k", HasClientSecret: true}, FlowConsumer},
		{"scope ignored", "application/json", `{"username":"a","password":"b","Scope":"/odata:x"}`,
			Request{Username: "a", Password: "b", HasUsername: true, HasPassword: true}, FlowUser},
		{"unknown fields ignored", "application/json", `{"username":"a","password":"b","extra":{"x":[1,2,{"y":null}]},"n":1}`,
			Request{Username: "a", Password: "b", HasUsername: true, HasPassword: true}, FlowUser},
		{"null is absent", "application/json", `{"username":"a","password":"b","ClientSecret":null}`,
			Request{Username: "a", Password: "b", HasUsername: true, HasPassword: true}, FlowUser},
		{"no content type", "", `{"username":"a","password":"b"}`,
			Request{Username: "a", Password: "b", HasUsername: true, HasPassword: true}, FlowUser},
		{"charset", "application/json; charset=UTF-8", `{"username":"a","password":"b"}`,
			Request{Username: "a", Password: "b", HasUsername: true, HasPassword: true}, FlowUser},
		{"form", "application/x-www-form-urlencoded", `username=a&password=p%40ss+word`,
			Request{Username: "a", Password: "p@ss word", HasUsername: true, HasPassword: true}, FlowUser},
		{"form consumer", "application/x-www-form-urlencoded", `GrantType=client_credentials&ClientSecret=k&username=u`,
			Request{GrantType: "client_credentials", ClientSecret: "k", Username: "u", HasGrantType: true, HasClientSecret: true, HasUsername: true}, FlowConsumer},
		{"refresh", "application/json", `{"GrantType":"refresh_token","RefreshToken":"r"}`,
			Request{GrantType: "refresh_token", RefreshToken: "r", HasGrantType: true, HasRefreshToken: true}, FlowRefresh},
		{"a ClientSecret wins over GrantType password", "application/json", `{"GrantType":"password","username":"a","password":"b","ClientSecret":"k"}`,
			Request{GrantType: "password", Username: "a", Password: "b", ClientSecret: "k", HasGrantType: true, HasUsername: true, HasPassword: true, HasClientSecret: true}, FlowConsumer},
		{"an empty ClientSecret counts as absent", "application/json", `{"GrantType":"password","username":"a","password":"b","ClientSecret":""}`,
			Request{GrantType: "password", Username: "a", Password: "b", HasGrantType: true, HasUsername: true, HasPassword: true, HasClientSecret: true}, FlowUser},
		{"a ClientSecret wins over GrantType refresh_token", "application/json", `{"GrantType":"refresh_token","RefreshToken":"r","ClientSecret":"k"}`,
			Request{GrantType: "refresh_token", RefreshToken: "r", ClientSecret: "k", HasGrantType: true, HasRefreshToken: true, HasClientSecret: true}, FlowConsumer},
		{"unicode", "application/json", `{"username":"J\u00fcrgen","password":"p\u00e4ss"}`,
			Request{Username: "Jürgen", Password: "päss", HasUsername: true, HasPassword: true}, FlowUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := ParseV2(tt.ct, []byte(tt.body))
			if e != nil {
				t.Fatalf("ParseV2: %v", e)
			}
			if got != tt.want {
				t.Fatalf("ParseV2 = %+v, want %+v", got, tt.want)
			}
			flow, e := got.Flow()
			if e != nil {
				t.Fatalf("Flow: %v", e)
			}
			if flow != tt.flow {
				t.Fatalf("Flow = %v, want %v", flow, tt.flow)
			}
		})
	}
}

func TestParseV2Errors(t *testing.T) {
	tests := []struct {
		name, ct, body string
		code, mention  string
	}{
		{"empty", "application/json", "", "invalid_request", "empty"},
		{"whitespace", "application/json", "  \n", "invalid_request", "empty"},
		{"array", "application/json", `[]`, "invalid_request", "JSON object"},
		{"string", "application/json", `"x"`, "invalid_request", "JSON object"},
		{"truncated", "application/json", `{"username":"a"`, "invalid_request", "not valid JSON"},
		{"trailing garbage", "application/json", `{"username":"a","password":"b"} x`, "invalid_request", "after the JSON object"},
		{"two objects", "application/json", `{"username":"a","password":"b"}{}`, "invalid_request", "after the JSON object"},
		{"duplicate", "application/json", `{"username":"a","UserName":"b","password":"c"}`, "invalid_request", "username is given twice"},
		{"number", "application/json", `{"username":1,"password":"b"}`, "invalid_request", "username must be a string, not a number"},
		{"bool", "application/json", `{"username":"a","password":true}`, "invalid_request", "password must be a string, not a boolean"},
		{"object", "application/json", `{"ClientSecret":{"a":1}}`, "invalid_request", "ClientSecret must be a string, not an object"},
		{"array field", "application/json", `{"GrantType":["x"]}`, "invalid_request", "GrantType must be a string, not an array"},
		{"text/plain", "text/plain", `{"username":"a","password":"b"}`, "invalid_request", "text/plain is not supported"},
		{"xml body", "application/xml", `<x/>`, "invalid_request", "application/xml is not supported"},
		{"bad content type", "application/json; =", `{}`, "invalid_request", "cannot be parsed"},
		{"latin1", "application/json; charset=latin1", `{}`, "invalid_request", "charset"},
		{"invalid utf8", "application/json", "{\"username\":\"\xff\",\"password\":\"b\"}", "invalid_request", "UTF-8"},
		{"missing password", "application/json", `{"username":"a"}`, "invalid_request", "password is required"},
		{"missing username", "application/json", `{"password":"a"}`, "invalid_request", "username is required"},
		{"nothing", "application/json", `{}`, "invalid_request", "username and password are required"},
		{"empty secret", "application/json", `{"GrantType":"client_credentials"}`, "invalid_request", "ClientSecret is required"},
		{"refresh without token", "application/json", `{"GrantType":"refresh_token"}`, "invalid_request", "RefreshToken is required"},
		{"unknown grant", "application/json", `{"GrantType":"implicit"}`, "unsupported_grant_type", "implicit"},
		{"form semicolon", "application/x-www-form-urlencoded", `username=a;password=b`, "invalid_request", "semicolons"},
		{"form bad escape", "application/x-www-form-urlencoded", `username=%zz&password=b`, "invalid_request", "escape"},
		{"form duplicate", "application/x-www-form-urlencoded", `username=a&username=b&password=c`, "invalid_request", "given 2 times"},
		{"form duplicate case", "application/x-www-form-urlencoded", `username=a&UserName=b&password=c`, "invalid_request", "given twice"},
		{"huge field", "application/json", `{"username":"` + strings.Repeat("a", 5000) + `","password":"b"}`, "invalid_request", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, e := ParseV2(tt.ct, []byte(tt.body))
			if e == nil {
				_, e = r.Flow()
			}
			if e == nil {
				t.Fatalf("no error for %q", tt.body)
			}
			if e.Status != http.StatusBadRequest || e.Code != tt.code {
				t.Fatalf("got %d %s, want 400 %s (%s)", e.Status, e.Code, tt.code, e.Description)
			}
			if !strings.Contains(e.Description, tt.mention) {
				t.Fatalf("description %q does not mention %q", e.Description, tt.mention)
			}
		})
	}
}

func TestErrorsNeverEchoSecrets(t *testing.T) {
	const secret = "Zq9-very-secret-value"
	bodies := []struct{ ct, body string }{
		{"application/json", `{"password": ` + secret + `}`},
		{"application/json", `{"password":"` + secret + `"} trailing`},
		{"application/json", `{"password":"` + secret + `","password":"` + secret + `"}`},
		{"application/x-www-form-urlencoded", `password=` + secret + `%zz`},
		{"application/x-www-form-urlencoded", `password=` + secret + `;x=1`},
	}
	for _, b := range bodies {
		_, e := ParseV2(b.ct, []byte(b.body))
		if e == nil {
			t.Fatalf("no error for %q", b.body)
		}
		if strings.Contains(e.Description, "Zq9") || strings.Contains(e.Error(), "Zq9") {
			t.Fatalf("error %q echoes the secret", e.Description)
		}
	}
}

func TestParseV1(t *testing.T) {
	h := http.Header{}
	h.Set("username", "api_user")
	h.Set("password", "your_password")
	r, flow, e := ParseV1(h)
	if e != nil || flow != FlowUser || r.Username != "api_user" || r.Password != "your_password" {
		t.Fatalf("user headers: %+v %v %v", r, flow, e)
	}
	h = http.Header{}
	h.Set("appkey", "62ccc18a-25e2-440c-bf6d-749c117fa9db")
	r, flow, e = ParseV1(h)
	if e != nil || flow != FlowConsumer || r.ClientSecret != "62ccc18a-25e2-440c-bf6d-749c117fa9db" || r.Username != "" {
		t.Fatalf("appkey: %+v %v %v", r, flow, e)
	}
	h.Set("username", "api_user")
	r, flow, e = ParseV1(h)
	if e != nil || flow != FlowConsumer || r.Username != "api_user" {
		t.Fatalf("appkey+username: %+v %v %v", r, flow, e)
	}

	bad := []struct {
		h       http.Header
		mention string
	}{
		{http.Header{}, "send username and password headers"},
		{http.Header{"Username": {"a"}}, "password is required"},
		{http.Header{"Password": {"a"}}, "username is required"},
		{http.Header{"Appkey": {""}}, "appkey is empty"},
		{http.Header{"Username": {"a", "b"}, "Password": {"c"}}, "sent 2 times"},
		{http.Header{"Username": {"a"}, "Password": {strings.Repeat("x", 5000)}}, "longer than"},
		{http.Header{"Username": {"\xff"}, "Password": {"x"}}, "UTF-8"},
	}
	for _, b := range bad {
		_, _, e := ParseV1(b.h)
		if e == nil || e.Status != 400 || !strings.Contains(e.Description, b.mention) {
			t.Fatalf("headers %v: got %v, want 400 mentioning %q", b.h, e, b.mention)
		}
	}
}

func FuzzParseV2(f *testing.F) {
	seeds := []struct{ ct, body string }{
		{"application/json", `{"username": "api_user", "password": "your_password"}`},
		{"application/json", `{"ClientSecret": "62ccc18a-25e2-440c-bf6d-749c117fa9db", "GrantType": "client_credentials", "username": "api_user"}`},
		{"application/json", `{"GrantType":"refresh_token","RefreshToken":"abc"}`},
		{"application/json", `{"a":[{"b":null}],"username":null}`},
		{"", `{"username":"a","password":"b"}`},
		{"application/x-www-form-urlencoded", `username=a&password=b&Scope=%2Fapi`},
		{"application/x-www-form-urlencoded", `grant_type=client_credentials&client_secret=k`},
		{"text/plain", `x`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		r, e := ParseV2(ct, body)
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Description == "" {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		flow, e := r.Flow()
		if e != nil {
			if e.Status != 400 {
				t.Fatalf("flow error status %d", e.Status)
			}
			return
		}
		switch flow {
		case FlowUser:
			if r.Username == "" || r.Password == "" {
				t.Fatalf("user flow without credentials: %+v", r)
			}
		case FlowConsumer:
			if r.ClientSecret == "" {
				t.Fatalf("consumer flow without secret")
			}
		case FlowRefresh:
			if r.RefreshToken == "" {
				t.Fatalf("refresh flow without token")
			}
		default:
			t.Fatalf("unknown flow %v", flow)
		}
	})
}

func FuzzParseV1(f *testing.F) {
	f.Add("api_user", "your_password", "", true)
	f.Add("", "", "62ccc18a-25e2-440c-bf6d-749c117fa9db", false)
	f.Add("u", "", "k", true)
	f.Fuzz(func(t *testing.T, user, pass, appkey string, twice bool) {
		h := http.Header{}
		if user != "" {
			h["Username"] = []string{user}
			if twice {
				h["Username"] = append(h["Username"], user)
			}
		}
		if pass != "" {
			h["Password"] = []string{pass}
		}
		if appkey != "" {
			h["Appkey"] = []string{appkey}
		}
		r, flow, e := ParseV1(h)
		if e != nil {
			if e.Status != 400 || e.Description == "" {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		if flow == FlowConsumer && r.ClientSecret == "" {
			t.Fatal("consumer flow without key")
		}
		if flow == FlowUser && (r.Username == "" || r.Password == "") {
			t.Fatal("user flow without credentials")
		}
	})
}

func TestJSONBodyWithFormContentType(t *testing.T) {
	_, e := ParseV2("application/x-www-form-urlencoded", []byte(` {"username":"a","password":"b"} `))
	if e == nil || !strings.Contains(e.Description, "set Content-Type: application/json") {
		t.Fatalf("got %v", e)
	}
}

// FuzzScanFlat: whatever the fast reader of flat JSON bodies accepts, it
// reads as encoding/json does.
func FuzzScanFlat(f *testing.F) {
	for _, s := range []string{
		`{"username": "api_user", "password": "your_password"}`,
		`{"ClientSecret":"k","GrantType":"client_credentials","UserName":null}`,
		` { } `, `{"a":"b",}`, `{"username":"a","Username":"b"}`, `{"x":"\u0041"}`, `{"password":"a"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return
		}
		fields, ok := scanFlat(body)
		if !ok {
			return
		}
		var fast Request
		var fe *gatehouse.Error
		seen := map[string]string{}
		for _, fl := range fields {
			if fe = fast.field(seen, fl.key, fl.null, fl.value); fe != nil {
				break
			}
		}
		slow, se := parseJSONDecoder(body)
		if (fe == nil) != (se == nil) || fe == nil && fast != slow || fe != nil && fe.Description != se.Description {
			t.Fatalf("%q: fast %+v, %v; decoder %+v, %v", body, fast, fe, slow, se)
		}
	})
}
