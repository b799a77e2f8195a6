package load_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/load"
)

// Each worker signs in as a user of its own, as separate clients would:
// load.Worker tells a request's worker from the context Run passes.
func ExampleWorker() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	users := []string{"alice", "bob"}
	res, err := load.Run(context.Background(), load.Options{
		Concurrency: len(users),
		Requests:    10,
		Request: func(ctx context.Context) (*http.Request, error) {
			i, _ := load.Worker(ctx) // 0 for the probe Run builds first
			form := url.Values{"grant_type": {"password"}, "username": {users[i]}, "password": {"…"}}
			r, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
			if err != nil {
				return nil, err
			}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r, nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Requests, res.OK())
	// Output: 10 true
}
