package scope

import (
	"strings"
	"testing"
)

func TestParseNormalises(t *testing.T) {
	for in, want := range map[string]string{
		"/api":              "/api",
		"/api;/p21sdk":      "/api;/p21sdk",
		" /API ; /P21SDK ;": "/api;/p21sdk",
		"/api;/api;/Api/":   "/api",
		"/odata:price_page,supplier,product_group": "/odata:price_page,supplier,product_group",
		"/odata: Supplier , PRICE_PAGE,supplier":   "/odata:supplier,price_page",
		"/odata:a;/odata:b,a":                      "/odata:a,b",
		"access":                                   "access",
		"Access;access":                            "access",
		"/api/.configuration;/uiserver0;/ui":       "/api/.configuration;/uiserver0;/ui",
		"orders:read;/api":                         "orders:read;/api",
		";;/api;;":                                 "/api",
	} {
		sc, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got := sc.String(); got != want {
			t.Errorf("Parse(%q) = %q, want %q", in, got, want)
		}
		// The normal form is a fixed point.
		again, err := Parse(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Errorf("normal form %q does not reparse to itself: %q %v", sc.String(), again, err)
		}
	}
}

func TestParseErrorsNameTheEntry(t *testing.T) {
	for in, wantInErr := range map[string]string{
		"":                        "empty",
		" ; ":                     "empty",
		"/api;/bad path":          `"/bad path"`,
		"/api;/x/../y":            `"/x/../y"`,
		"/api//x":                 `"/api//x"`,
		"/":                       `"/"`,
		"/odata:":                 "object list is empty",
		"/odata:1abc":             `"1abc"`,
		"/api:supplier":           "only /odata takes an object list",
		"acc ess":                 `"acc ess"`,
		"/odata:a-b":              `"a-b"`,
		strings.Repeat("a", 5000): "longer than",
	} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("Parse(%q) error %q does not mention %q", in, err, wantInErr)
		}
	}
}

func TestMatching(t *testing.T) {
	sc, _ := Parse("/odata:supplier,price_page;/UIServer0;access")
	if !sc.Grants("/odata", "supplier") || !sc.Grants("/odata", "price_page") || sc.Grants("/odata", "customer") {
		t.Error("object list matching")
	}
	if sc.Grants("/odata", "") {
		t.Error("an object list grants the whole path")
	}
	if !sc.Grants("/uiserver0", "") || !sc.Has("access") || sc.Has("/api") {
		t.Error("path matching")
	}
	all, _ := Parse("/odata:a;/odata")
	if all.String() != "/odata" || !all.Grants("/odata", "anything") {
		t.Errorf("bare path absorbs object list: %q", all)
	}
}

func TestConsumerRules(t *testing.T) {
	sc, _ := Parse("/api;/odata")
	if err := ValidateForConsumer(sc); err == nil || !strings.Contains(err.Error(), "must list tables") {
		t.Fatalf("bare /odata: %v", err)
	}
	sc, _ = Parse("/odata:supplier")
	if err := ValidateForConsumer(sc); err != nil {
		t.Fatal(err)
	}
	w := WithSDK(sc)
	if w.String() != "/odata:supplier;/p21sdk" || sc.String() != "/odata:supplier" {
		t.Fatalf("WithSDK: %q (original %q)", w, sc)
	}
	if WithSDK(w).String() != w.String() {
		t.Fatal("WithSDK twice duplicates")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/api;/p21sdk", "/odata:a,b;/odata:c", "access", " ; ", "/x/../y", "/odata:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := Parse(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		norm := sc.String()
		again, err := Parse(norm)
		if err != nil {
			t.Fatalf("normal form %q of %q does not parse: %v", norm, s, err)
		}
		if again.String() != norm {
			t.Fatalf("normal form not stable: %q -> %q", norm, again.String())
		}
		if norm != strings.ToLower(norm) || strings.ContainsAny(norm, " \t\n") {
			t.Fatalf("normal form %q not lower case / has spaces", norm)
		}
	})
}
