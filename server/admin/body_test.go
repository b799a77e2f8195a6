package admin

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseJSON(t *testing.T) {
	type body struct {
		Name  string   `json:"name"`
		Admin *bool    `json:"admin"`
		List  []string `json:"list"`
	}
	for _, c := range []struct{ in, err string }{
		{`{"name":"a","admin":true,"list":["x","y"]}`, ""},
		{`{"name":"a","NAME":"b"}`, `key "NAME" appears twice`},
		{`{"list":[{"a":1,"a":2}]}`, `appears twice`},
		{`{"name":"a"} {}`, "something after"},
		{`{"name":"a"}x`, "something after"},
		{`{"name":1}`, `field "name" must be a string`},
		{`{"admin":"yes"}`, `field "admin" must be true or false`},
		{`{"other":1}`, `unknown field "other"`},
		{``, "empty"},
		{`{"name":`, "ends early"},
		{`[1]`, "must be a JSON object"},
		{`{"name":"a",}`, "malformed JSON"},
		{strings.Repeat("[", 40) + strings.Repeat("]", 40), "nested too deeply"},
	} {
		var b body
		e := parseJSON([]byte(c.in), &b)
		switch {
		case c.err == "" && e != nil:
			t.Errorf("%s: %v", c.in, e)
		case c.err != "" && (e == nil || !strings.Contains(e.Description, c.err)):
			t.Errorf("%s: %v, want %q", c.in, e, c.err)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","admin":true}`, `{"a":1,"A":2}`, `{"list":["x"]}`, `[`, `{"x":{"y":[1,{"z":2}]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v struct {
			Name  string   `json:"name"`
			Admin *bool    `json:"admin"`
			List  []string `json:"list"`
		}
		if e := parseJSON([]byte(s), &v); e != nil && (e.Status != 400 || e.Description == "") {
			t.Fatalf("%q: %+v", s, e)
		}
	})
}

func FuzzPageParams(f *testing.F) {
	f.Add("limit=10&cursor=" + cursorOf("abc"))
	f.Add("limit=-1")
	f.Add("cursor=%%%")
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = q
		limit, _, e := pageParams(r)
		if e == nil && (limit < 1 || limit > maxLimit) {
			t.Fatalf("%q: limit %d", q, limit)
		}
	})
}

func TestPaginate(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	var got []string
	after := ""
	for i := 0; i < 10; i++ {
		p := paginate(items, id, 2, after)
		got = append(got, p.Items...)
		if p.NextCursor == "" {
			break
		}
		after = p.Items[len(p.Items)-1]
	}
	if strings.Join(got, "") != "abcde" {
		t.Errorf("pages: %v", got)
	}
}
