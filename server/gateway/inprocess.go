package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
)

// inProcessURL is the upstream URL of a family served by a handler: the
// proxy's rewrite needs one, and no connection is ever made to it.
var inProcessURL = &url.URL{Scheme: "http", Host: "in-process.invalid"}

// Conflicts lists, sorted, the families given both an upstream URL and an
// in-process handler: a configuration error the caller reports.
func Conflicts(upstreams map[string]*url.URL, handlers map[string]http.Handler) []string {
	var out []string
	for fam := range handlers {
		if _, ok := upstreams[fam]; ok {
			out = append(out, fam)
		}
	}
	sort.Strings(out)
	return out
}

// handlerTransport is a RoundTripper that answers by calling an
// http.Handler: the proxied request, after the gateway's decision, rewrite
// and header handling, reaches the handler exactly as it would reach a
// server at the upstream URL. The response is buffered: in-process
// upstreams answer bounded bodies.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// What a server would see: a server-side request with RequestURI set.
	in := r.Clone(r.Context())
	in.RequestURI = r.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()),
		Request:       r,
	}, nil
}

// bufferedResponse is the ResponseWriter a handlerTransport gives the
// handler.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
