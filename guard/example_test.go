package guard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/gatehouse/gatehouse/guard"
)

// A resource server elsewhere asks gatehouse's /auth/check.
func ExampleNewRemote() {
	d := guard.NewRemote("http://127.0.0.1:8080", guard.RemoteOptions{})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := guard.FromContext(r.Context())
		fmt.Fprintf(w, "family %s, acting user %q\n", id.Family, id.User)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", guard.Middleware(d)(api)))
}

// A resource server that can reach gatehouse, but not its store, verifies
// signatures with the published keys and asks introspection about sessions.
// ClientID and ClientSecret are a consumer registered for this server
// (`gatehouse consumer add orders-api --scope /api`).
func ExampleNewJWKS() {
	d, err := guard.NewJWKS(context.Background(), guard.JWKSConfig{
		BaseURL:      "http://127.0.0.1:8080",
		ClientID:     "orders-api",
		ClientSecret: os.Getenv("GATEHOUSE_CLIENT_SECRET"),
	})
	if err != nil {
		log.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := guard.FromContext(r.Context())
		fmt.Fprintf(w, "session %s, consumer %q\n", id.SessionID, id.ConsumerUID)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", guard.Middleware(d)(api)))
}

// Middleware answers refusals with gatehouse's error body and passes allowed
// requests on with the identity in their context.
func ExampleMiddleware() {
	d := guard.DeciderFunc(func(r *http.Request) (*guard.Identity, error) {
		if r.Header.Get("Authorization") == "" {
			return nil, &guard.Refusal{Status: 401, Code: "invalid_token", Description: "A bearer token is required."}
		}
		return &guard.Identity{User: "api_user", Family: "api"}, nil
	})
	h := guard.Middleware(d)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := guard.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", id.User)
	}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/entity/customers", nil))
	fmt.Println(rec.Code, rec.Body.String())

	req := httptest.NewRequest("GET", "/api/entity/customers", nil)
	req.Header.Set("Authorization", "Bearer eyJ…")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 401 {"error":"invalid_token","error_description":"A bearer token is required."}
	//
	// 200 hello api_user
}
