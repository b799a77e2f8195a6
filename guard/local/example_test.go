package local_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/guard/local"
)

// A resource server that shares gatehouse's store decides in-process.
func ExampleOpen() {
	d, err := local.Open(context.Background(), local.Config{DataDir: "/var/lib/gatehouse"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := guard.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (consumer %q)\n", id.User, id.ConsumerUID)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", guard.Middleware(d)(api)))
}
