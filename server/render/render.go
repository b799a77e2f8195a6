// Package render writes gatehouse's responses: JSON and XML bodies, and
// protocol errors, each in one place. It also chooses between JSON and XML
// from the Accept header.
package render

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Format is a response body format.
type Format int

// The formats, and the negotiation mode.
const (
	Negotiate Format = iota // choose per request from Accept
	JSON
	XML
)

// ParseFormat reads the --token-format setting.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "negotiate", "":
		return Negotiate, nil
	case "json":
		return JSON, nil
	case "xml":
		return XML, nil
	}
	return Negotiate, fmt.Errorf("token format %q is not negotiate, json or xml", s)
}

func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case XML:
		return "xml"
	}
	return "negotiate"
}

// Choose resolves the mode to a concrete format for a request's Accept header.
func (f Format) Choose(accept string) Format {
	if f != Negotiate {
		return f
	}
	if PrefersXML(accept) {
		return XML
	}
	return JSON
}

// PrefersXML reports whether an Accept header prefers application/xml or
// text/xml over JSON. Wildcards count for JSON only: a client that accepts
// anything gets JSON. On equal quality the type listed first wins.
func PrefersXML(accept string) bool {
	if accept == "" || !strings.Contains(accept, "xml") {
		return false
	}
	qJSON, qXML := -1.0, -1.0
	posJSON, posXML := math.MaxInt, math.MaxInt
	for i, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
		switch mt {
		case "application/xml", "text/xml":
			if q > qXML {
				qXML, posXML = q, i
			}
		case "application/json", "application/*", "*/*", "text/json":
			if q > qJSON || (q == qJSON && i < posJSON) {
				qJSON, posJSON = q, i
			}
		}
	}
	if qXML <= 0 {
		return false
	}
	return qXML > qJSON || (qXML == qJSON && posXML < posJSON)
}

const (
	contentJSON = "application/json; charset=utf-8"
	contentXML  = "application/xml; charset=utf-8"
	xmlHeader   = `<?xml version="1.0" encoding="utf-8"?>` + "\n"
)

// WriteJSON writes v as a JSON body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are written; this cannot happen with them.
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error","error_description":"response encoding failed"}`)
	}
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// WriteXML writes v (an encoding/xml value) as an XML document with the
// declaration the P21 middleware sends.
func WriteXML(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	buf.WriteString(xmlHeader)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(xmlHeader + `<ErrorResponse><error>server_error</error><error_description>response encoding failed</error_description></ErrorResponse>`)
	}
	buf.WriteByte('\n')
	w.Header().Set("Content-Type", contentXML)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Write writes a token-endpoint body in format f (JSON or XML): jsonBody is
// marshalled with encoding/json, xmlBody with encoding/xml.
func Write(w http.ResponseWriter, f Format, status int, jsonBody, xmlBody any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if f == XML {
		WriteXML(w, status, xmlBody)
		return
	}
	WriteJSON(w, status, jsonBody)
}

// ErrorBody is the JSON form of a protocol error (RFC 6749 §5.2 names).
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// XMLErrorBody is the XML form of a protocol error.
type XMLErrorBody struct {
	XMLName     xml.Name `xml:"ErrorResponse"`
	Error       string   `xml:"error"`
	Description string   `xml:"error_description"`
}

// Error writes a protocol error in format f, with its headers (Retry-After,
// WWW-Authenticate, Allow, …).
func Error(w http.ResponseWriter, f Format, e *gatehouse.Error) {
	if f != XML {
		JSONError(w, e)
		return
	}
	errorHeaders(w.Header(), e)
	Write(w, f, e.Status, nil, XMLErrorBody{Error: e.Code, Description: e.Description})
}

// JSONError is Error in JSON, for programs that never answer XML (it
// links no XML encoder).
func JSONError(w http.ResponseWriter, e *gatehouse.Error) {
	errorHeaders(w.Header(), e)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	WriteJSON(w, e.Status, ErrorBody{Error: e.Code, Description: e.Description})
}

func errorHeaders(h http.Header, e *gatehouse.Error) {
	for k, vs := range e.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if e.RetryAfter > 0 {
		secs := int64(math.Ceil(e.RetryAfter.Seconds()))
		h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
}

// ReadBody reads a request body of at most max bytes: a larger one (by its
// Content-Length or as read) is a 413, a body that cannot be read a 400.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *gatehouse.Error) {
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	body := http.MaxBytesReader(w, r.Body, max)
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 {
		// The length is known (and within max): one buffer of that size,
		// then a read that must find the end. net/http ends the body at
		// its Content-Length; a reader that does not is refused.
		b = make([]byte, n)
		if _, err = io.ReadFull(body, b); err == nil {
			var one [1]byte
			if k, e := body.Read(one[:]); k > 0 {
				err = errors.New("body longer than its Content-Length")
			} else if e != io.EOF && e != nil {
				err = e
			}
		}
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(max)
		}
		return nil, gatehouse.ErrInvalidRequest("the request body could not be read")
	}
	return b, nil
}

func tooLarge(max int64) *gatehouse.Error {
	e := gatehouse.ErrInvalidRequest("the request body is larger than %d KiB", max>>10)
	e.Status = http.StatusRequestEntityTooLarge
	return e
}
