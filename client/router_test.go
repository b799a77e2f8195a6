package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/client"
)

// routerServer answers the UI router for the bearer token "good".
func routerServer(t *testing.T) (*server, *atomic.Int64) {
	var lookups atomic.Int64
	var srv *server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.UIRouterPath {
			writeJSON(w, 404, `{"error":"not_found"}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer good" {
			writeJSON(w, 401, `{"error":"invalid_token","error_description":"The token is not valid."}`)
			return
		}
		lookups.Add(1)
		switch r.URL.Query().Get("urlType") {
		case "external":
			writeJSON(w, 200, `{"Url":"`+srv.URL+`/uiserver0/"}`)
		case "internal":
			writeJSON(w, 200, `{"url":"http://10.0.0.5:8080/uiserver0"}`)
		default:
			writeJSON(w, 400, `{"error":"invalid_request","error_description":"urlType must be external or internal"}`)
		}
	})
	return srv, &lookups
}

func TestUIServerURL(t *testing.T) {
	srv, lookups := routerServer(t)
	c := client.NewClient(srv.URL, staticCached("good"))
	ctx := context.Background()
	for range 3 {
		u, err := c.UIServerURL(ctx, client.External)
		if err != nil {
			t.Fatal(err)
		}
		if u != srv.URL+"/uiserver0" {
			t.Fatalf("external = %q", u)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d router requests, want 1 (cached)", n)
	}
	u, err := c.UIServerURL(ctx, client.Internal)
	if err != nil || u != "http://10.0.0.5:8080/uiserver0" {
		t.Fatalf("internal = %q, %v", u, err)
	}

	for _, tt := range []struct{ path, want string }{
		{"/api/ui/interactive/sessions/", srv.URL + "/uiserver0/api/ui/interactive/sessions/"},
		{"api/v2/transaction/get?x=1", srv.URL + "/uiserver0/api/v2/transaction/get?x=1"},
		{"/uiserver0/api/ui/interactive/sessions/", srv.URL + "/uiserver0/api/ui/interactive/sessions/"},
		{"https://elsewhere.example/x", "https://elsewhere.example/x"},
	} {
		got, err := c.UIURL(ctx, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("UIURL(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d router requests, want 2", n)
	}
}

func TestUIServerURLErrors(t *testing.T) {
	srv, _ := routerServer(t)
	_, err := client.NewClient(srv.URL, staticCached("bad")).UIServerURL(context.Background(), client.External)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_token" {
		t.Fatalf("err = %v", err)
	}
	if _, err := client.NewClient(srv.URL, staticCached("good")).UIServerURL(context.Background(), "sideways"); err == nil {
		t.Fatal("a bad URL type was accepted")
	}
	odd := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"Url":"javascript:alert(1)"}`) })
	if _, err := client.NewClient(odd.URL, staticCached("good")).UIServerURL(context.Background(), client.External); !errors.As(err, &e) || e.Status != 200 {
		t.Fatalf("a non-http Url was accepted: %v", err)
	}
}

func TestResolveUIPath(t *testing.T) {
	for _, tt := range []struct{ ui, path, want string }{
		{"https://h/uiserver0", "/api/x", "https://h/uiserver0/api/x"},
		{"https://h/uiserver0", "/UISERVER0/api/x", "https://h/UISERVER0/api/x"},
		{"https://h/uiserver0", "/uiserver01/api", "https://h/uiserver0/uiserver01/api"},
		{"https://h", "api/x", "https://h/api/x"},
	} {
		got, err := client.ResolveUIPath(tt.ui, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("ResolveUIPath(%q, %q) = %q, %v; want %q", tt.ui, tt.path, got, err, tt.want)
		}
	}
}
