// Package transaction simulates P21's Transaction API, the stateless
// service for creating and updating records window by window: the
// services and their definitions and defaults, transactions (each one a
// window filled from DataElements and saved, with a result and messages of
// its own), retrieving records (transaction/get), and asynchronous
// transactions with status polling and callbacks.
//
// The acting user is the one the gateway names (X-Gatehouse-User: the
// token's user, or the install user for tokens without one); it is
// recorded as the taker and last maintainer of what is written.
package transaction

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/window"
	"github.com/gatehouse/gatehouse/wire"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

// Handler serves the Transaction API under /api/v2 (the sandbox strips
// the UI server's /uiserver0).
type Handler struct {
	DB    *data.DB
	Clock gatehouse.Clock
	Log   *slog.Logger
	// Client sends callbacks; default a client with a 10 s timeout.
	Client *http.Client

	mu    sync.Mutex
	async map[string]*asyncRequest
	order []string // async request ids, oldest first
	sem   chan struct{}
	wg    sync.WaitGroup
}

// Match reports whether a (lower-case) path is the Transaction API's.
func Match(lower string) bool {
	for _, p := range []string{"/api/v2/transaction", "/api/v2/services", "/api/v2/definition", "/api/v2/defaults"} {
		if lower == p || strings.HasPrefix(lower, p+"/") {
			return true
		}
	}
	return false
}

// Wait waits for the asynchronous transactions under way (for tests and
// shutdown).
func (h *Handler) Wait() { h.wg.Wait() }

// message writes an error the way P21's web API does: {"Message": "…"}.
func message(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"Message": fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Message":"The response could not be written."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(strings.ToLower(r.URL.Path), "/")
	switch {
	case p == "/api/v2/services":
		if !method(w, r, http.MethodGet) {
			return
		}
		h.services(w)
	case strings.HasPrefix(p, "/api/v2/definition/"), strings.HasPrefix(p, "/api/v2/defaults/"):
		if !method(w, r, http.MethodGet) {
			return
		}
		name := r.URL.Path[strings.LastIndex(strings.TrimSuffix(r.URL.Path, "/"), "/")+1:]
		name = strings.TrimSuffix(name, "/")
		svc := window.LookupService(name)
		if svc == nil {
			message(w, http.StatusNotFound, "Service '%s' was not found. GET /api/v2/services lists the services.", gatehouse.Clip(name, 60))
			return
		}
		if strings.HasPrefix(p, "/api/v2/definition/") {
			writeJSON(w, http.StatusOK, Definition(svc))
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"Name": svc.Name, "UseCodeValues": false, "DataElements": window.New(svc).Elements(false)})
		}
	case p == "/api/v2/transaction":
		if !method(w, r, http.MethodPost) {
			return
		}
		var set TransactionSet
		if !decode(w, r, &set) {
			return
		}
		res, status, msg := h.Run(r.Context(), user(r), &set)
		if status != http.StatusOK {
			message(w, status, "%s", msg)
			return
		}
		writeJSON(w, http.StatusOK, res)
	case p == "/api/v2/transaction/get":
		if !method(w, r, http.MethodPost) {
			return
		}
		h.get(w, r)
	case p == "/api/v2/transaction/async":
		switch r.Method {
		case http.MethodPost:
			var set TransactionSet
			if !decode(w, r, &set) {
				return
			}
			h.submit(w, r, &set, nil)
		case http.MethodGet, http.MethodHead:
			h.status(w, r)
		default:
			w.Header().Set("Allow", "GET, POST")
			message(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
		}
	case p == "/api/v2/transaction/async/callback":
		if !method(w, r, http.MethodPost) {
			return
		}
		var req struct {
			Content  *TransactionSet
			Callback *Callback
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Content == nil || req.Callback == nil {
			message(w, http.StatusBadRequest, "The request needs Content (the transaction set) and Callback (Url, Method, ContentType, Headers).")
			return
		}
		if err := req.Callback.check(); err != nil {
			message(w, http.StatusBadRequest, "%s", err.Error())
			return
		}
		h.submit(w, r, req.Content, req.Callback)
	default:
		message(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '%s'.", gatehouse.Clip(r.URL.Path, 200))
	}
}

func method(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m || m == http.MethodGet && r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", m)
	message(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
	return false
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		message(w, http.StatusBadRequest, "The request body could not be read.")
		return false
	}
	if len(body) > maxBody {
		message(w, http.StatusRequestEntityTooLarge, "The request body is larger than %d bytes.", maxBody)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		message(w, http.StatusBadRequest, "The request is invalid: the body is not the expected JSON (%s).", gatehouse.Clip(err.Error(), 200))
		return false
	}
	if dec.More() {
		message(w, http.StatusBadRequest, "The request is invalid: there is more after the JSON body.")
		return false
	}
	return true
}

// user is the acting user the gateway set.
func user(r *http.Request) string { return r.Header.Get(wire.HeaderUser) }

func (h *Handler) services(w http.ResponseWriter) {
	type info struct{ Name, Description string }
	var out []info
	for _, s := range window.Services() {
		out = append(out, info{s.Name, s.Title})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// TransactionSet is the body of a transaction: a service and records to
// create or update.
type TransactionSet struct {
	Name          string
	UseCodeValues bool
	Transactions  []Transaction
}

// Transaction is one record: its datawindows' values.
type Transaction struct {
	Status       string
	DataElements []DataElement
}

// DataElement gives the rows of one datawindow (TAB.datawindow).
type DataElement struct {
	Name string
	Type string
	Keys []any
	Rows []Row
}

// Row is a row's edits.
type Row struct {
	Edits             []Edit
	RelativeDateEdits []json.RawMessage
}

// Edit is a field and its value.
type Edit struct {
	Name  string
	Value any
}

// Result is the answer to a transaction set.
type Result struct {
	Messages []string
	Results  *ResultSet
	Summary  Summary
}

// ResultSet holds every transaction's outcome, when at least one passed.
type ResultSet struct {
	Name          string
	UseCodeValues bool
	Transactions  []ResultTransaction
}

// ResultTransaction is a transaction's outcome: Passed with the record as
// saved, or Failed.
type ResultTransaction struct {
	DataElements []window.Element
	Status       string
}

// Summary counts the outcomes.
type Summary struct {
	Succeeded, Failed, Other int
}

// maxTransactions bounds one set.
const maxTransactions = 500

// Run applies a transaction set as user; status is not 200 when the set
// itself is refused (msg says why).
func (h *Handler) Run(ctx context.Context, user string, set *TransactionSet) (*Result, int, string) {
	svc := window.LookupService(set.Name)
	if svc == nil {
		return nil, http.StatusBadRequest, fmt.Sprintf("Service '%s' was not found. GET /api/v2/services lists the services.", gatehouse.Clip(set.Name, 60))
	}
	if len(set.Transactions) == 0 {
		return nil, http.StatusBadRequest, "The transaction set has no Transactions."
	}
	if len(set.Transactions) > maxTransactions {
		return nil, http.StatusBadRequest, fmt.Sprintf("A transaction set holds at most %d transactions.", maxTransactions)
	}
	res := &Result{Messages: []string{}}
	rs := &ResultSet{Name: svc.Name, UseCodeValues: set.UseCodeValues}
	for i, tr := range set.Transactions {
		st, err := apply(ctx, h.DB, svc, tr, set.UseCodeValues)
		if err == nil {
			err = st.Save(ctx, h.DB, user)
		}
		if err != nil {
			if !isUserError(err) {
				if h.Log != nil {
					h.Log.Warn("sandbox transaction failed", "service", svc.Name, "err", err)
				}
				return nil, http.StatusInternalServerError, "The transaction could not be processed: " + gatehouse.Clip(err.Error(), 200)
			}
			res.Summary.Failed++
			res.Messages = append(res.Messages, fmt.Sprintf("Transaction %d:: %s", i+1, userMessage(err)))
			rs.Transactions = append(rs.Transactions, ResultTransaction{DataElements: []window.Element{}, Status: "Failed"})
			continue
		}
		res.Summary.Succeeded++
		res.Messages = append(res.Messages, fmt.Sprintf("Transaction %d:: ", i+1))
		rs.Transactions = append(rs.Transactions, ResultTransaction{DataElements: st.Elements(set.UseCodeValues), Status: "Passed"})
	}
	if res.Summary.Succeeded > 0 {
		res.Results = rs
	}
	return res, http.StatusOK, ""
}

func isUserError(err error) bool {
	var we *window.Error
	var ve *data.ValidationError
	return errors.As(err, &we) || errors.As(err, &ve) || errors.Is(err, data.ErrNotFound)
}

func userMessage(err error) string {
	if errors.Is(err, data.ErrNotFound) {
		return "The record to update does not exist (" + err.Error() + ")"
	}
	return err.Error()
}

// apply fills a new window from a transaction's DataElements.
func apply(ctx context.Context, db *data.DB, svc *window.Service, tr Transaction, codes bool) (*window.State, error) {
	st := window.New(svc)
	for _, de := range tr.DataElements {
		_, dw := svc.Element(de.Name)
		if dw == nil {
			return nil, &window.Error{Message: fmt.Sprintf("DataElement '%s' is not part of service %s", gatehouse.Clip(de.Name, 60), svc.Name)}
		}
		for _, row := range de.Rows {
			n := 0
			if dw.List {
				key := dw.KeyField()
				existing := -1
				for _, e := range row.Edits {
					if key != nil && strings.EqualFold(e.Name, key.Name) {
						v := strings.TrimSpace(fmt.Sprint(e.Value))
						if f, ok := e.Value.(float64); ok {
							v = fmt.Sprint(int64(f))
						}
						for i, r := range st.Rows(dw) {
							if r.Existing && r.Values[key.Name] == v {
								existing = i
							}
						}
						if existing < 0 {
							return nil, &window.Error{Message: fmt.Sprintf("%s %s does not exist in %s", key.Name, gatehouse.Clip(v, 20), de.Name)}
						}
					}
				}
				if existing >= 0 {
					n = existing
				} else {
					var err error
					if n, err = st.AddRow(dw); err != nil {
						return nil, err
					}
				}
			}
			for _, e := range row.Edits {
				if dw.List && dw.KeyField() != nil && strings.EqualFold(e.Name, dw.KeyField().Name) {
					continue
				}
				q, err := st.Set(ctx, db, dw, n, e.Name, e.Value, codes)
				if err != nil {
					return nil, err
				}
				if q != nil {
					return nil, &window.Error{Message: fmt.Sprintf("Unexpected response window %s (%s): %s", q.Name, q.Title, q.Message)}
				}
			}
			if !dw.List {
				break
			}
		}
	}
	return st, nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ServiceName       string
		UseCodeValues     bool
		TransactionStates []struct {
			DataElementName string
			Keys            []Edit
		}
	}
	if !decode(w, r, &req) {
		return
	}
	svc := window.LookupService(req.ServiceName)
	if svc == nil {
		message(w, http.StatusBadRequest, "Service '%s' was not found. GET /api/v2/services lists the services.", gatehouse.Clip(req.ServiceName, 60))
		return
	}
	if len(req.TransactionStates) == 0 || len(req.TransactionStates) > maxTransactions {
		message(w, http.StatusBadRequest, "The request needs TransactionStates: the DataElementName and Keys of each record to get.")
		return
	}
	out := ResultSet{Name: svc.Name, UseCodeValues: req.UseCodeValues}
	for _, ts := range req.TransactionStates {
		_, dw := svc.Element(ts.DataElementName)
		if dw == nil || dw.KeyField() == nil {
			message(w, http.StatusBadRequest, "DataElement '%s' of service %s has no key to get a record by.", gatehouse.Clip(ts.DataElementName, 60), svc.Name)
			return
		}
		key := ""
		for _, k := range ts.Keys {
			if strings.EqualFold(k.Name, dw.KeyField().Name) {
				key = strings.TrimSpace(fmt.Sprint(k.Value))
				if f, ok := k.Value.(float64); ok {
					key = fmt.Sprint(int64(f))
				}
			}
		}
		if key == "" {
			message(w, http.StatusBadRequest, "Keys must give %s.", dw.KeyField().Name)
			return
		}
		st, err := window.Load(r.Context(), h.DB, svc, key)
		if errors.Is(err, data.ErrNotFound) {
			message(w, http.StatusNotFound, "%s %s %s was not found.", svc.Name, dw.KeyField().Name, gatehouse.Clip(key, 40))
			return
		}
		if err != nil {
			message(w, http.StatusInternalServerError, "The record could not be read.")
			return
		}
		out.Transactions = append(out.Transactions, ResultTransaction{DataElements: st.Elements(req.UseCodeValues), Status: "Passed"})
	}
	writeJSON(w, http.StatusOK, out)
}

// Definition describes a service: a blank template and every field.
func Definition(svc *window.Service) map[string]any {
	type valid struct{ Code, Display string }
	type field struct {
		Name, Label, DataType   string
		Required, Key, ReadOnly bool
		Default                 any
		ValidValues             []valid
		MustFollow              []string `json:",omitempty"`
	}
	type elemDef struct {
		Name, Type       string
		KeyFields        []string
		FieldDefinitions []field
	}
	var defs []elemDef
	var tmpl []window.Element
	for _, t := range svc.Tabs {
		for _, d := range t.Datawindows {
			ed := elemDef{Name: window.ElementName(t, d), Type: "Form", KeyFields: []string{}}
			e := window.Element{Name: ed.Name, Type: "Form", Keys: []string{}, Rows: []window.RowOut{{Edits: []window.Edit{}, RelativeDateEdits: []any{}}}}
			if d.List {
				ed.Type, e.Type = "List", "List"
			}
			if k := d.KeyField(); k != nil {
				ed.KeyFields = append(ed.KeyFields, k.Name)
				e.Keys = append(e.Keys, k.Name)
			}
			for _, f := range d.Fields {
				fd := field{Name: f.Name, Label: f.Label, DataType: string(f.Type), Required: f.Required, Key: f.Key, ReadOnly: f.ReadOnly, MustFollow: f.After}
				if f.Default != "" {
					fd.Default = window.Display(f, f.Default)
				}
				for _, c := range f.Choices {
					fd.ValidValues = append(fd.ValidValues, valid{c.Code, c.Display})
				}
				if f.Type == window.Checkbox {
					fd.ValidValues = []valid{{"Y", "ON"}, {"N", "OFF"}}
				}
				ed.FieldDefinitions = append(ed.FieldDefinitions, fd)
				e.Rows[0].Edits = append(e.Rows[0].Edits, window.Edit{Name: f.Name})
			}
			defs = append(defs, ed)
			tmpl = append(tmpl, e)
		}
	}
	return map[string]any{
		"Name":  svc.Name,
		"Title": svc.Title,
		"Template": map[string]any{"Name": svc.Name, "UseCodeValues": false,
			"Transactions": []map[string]any{{"Status": "New", "DataElements": tmpl}}},
		"TransactionDefinition": map[string]any{"Name": svc.Name, "DataElementDefinitions": defs},
	}
}

// Callback is where an asynchronous transaction's outcome is sent.
type Callback struct {
	URL         string
	Method      string
	ContentType string
	Headers     []struct{ Name, Value string }
}

// check allows callbacks to this machine only: the sandbox is for
// development, and must not be a way to reach other hosts.
func (c *Callback) check() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("Callback.Url must be an http(s) URL")
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("the sandbox sends callbacks only to this machine (localhost, 127.0.0.1, [::1]), not to %s", gatehouse.Clip(host, 60))
	}
	switch strings.ToUpper(c.Method) {
	case "", "POST", "PUT":
	default:
		return fmt.Errorf("Callback.Method must be POST or PUT")
	}
	for _, h := range c.Headers {
		if h.Name == "" || strings.ContainsAny(h.Name+h.Value, "\r\n") {
			return fmt.Errorf("Callback.Headers holds a header that cannot be sent")
		}
	}
	return nil
}

type asyncRequest struct {
	RequestID     string `json:"RequestId"`
	Status        string
	Messages      string
	CompletedDate string `json:",omitempty"`
	owner         string // who submitted it (ownerOf)
}

// ownerOf names who makes a request: its acting user and consumer.
func ownerOf(r *http.Request) string {
	return r.Header.Get(wire.HeaderUser) + "\x00" + r.Header.Get(wire.HeaderConsumerUID)
}

// maxAsync bounds the async requests remembered.
const maxAsync = 1000

func (h *Handler) submit(w http.ResponseWriter, r *http.Request, set *TransactionSet, cb *Callback) {
	if window.LookupService(set.Name) == nil {
		message(w, http.StatusBadRequest, "Service '%s' was not found. GET /api/v2/services lists the services.", gatehouse.Clip(set.Name, 60))
		return
	}
	req := &asyncRequest{RequestID: uuid.NewString(), Status: "Active", owner: ownerOf(r)}
	h.mu.Lock()
	if h.async == nil {
		h.async = map[string]*asyncRequest{}
		h.sem = make(chan struct{}, 2)
	}
	for len(h.order) >= maxAsync {
		delete(h.async, h.order[0])
		h.order = h.order[1:]
	}
	h.async[req.RequestID] = req
	h.order = append(h.order, req.RequestID)
	snapshot := *req
	h.mu.Unlock()
	u := user(r)
	h.wg.Add(1)
	go h.process(req, u, set, cb)
	writeJSON(w, http.StatusOK, snapshot)
}

func (h *Handler) process(req *asyncRequest, user string, set *TransactionSet, cb *Callback) {
	defer h.wg.Done()
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, status, msg := h.Run(ctx, user, set)
	var b []byte
	final := "Complete"
	if status != http.StatusOK {
		final = "Failed"
		b, _ = json.Marshal(map[string]string{"Message": msg})
	} else {
		if res.Summary.Failed > 0 {
			final = "Failed"
		}
		b, _ = json.Marshal(res)
	}
	clock := h.Clock
	if clock == nil {
		clock = gatehouse.SystemClock
	}
	h.mu.Lock()
	req.Status, req.Messages, req.CompletedDate = final, string(b), clock.Now().UTC().Format("2006-01-02T15:04:05")
	snapshot := *req
	h.mu.Unlock()
	if cb != nil {
		h.callback(ctx, cb, snapshot)
	}
}

func (h *Handler) callback(ctx context.Context, cb *Callback, req asyncRequest) {
	body, _ := json.Marshal(req)
	m := strings.ToUpper(cb.Method)
	if m == "" {
		m = http.MethodPost
	}
	hr, err := http.NewRequestWithContext(ctx, m, cb.URL, bytes.NewReader(body))
	if err != nil {
		return
	}
	ct := cb.ContentType
	if ct == "" {
		ct = "application/json"
	}
	hr.Header.Set("Content-Type", ct)
	for _, hd := range cb.Headers {
		hr.Header.Set(hd.Name, hd.Value)
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Do(hr)
	if err != nil {
		if h.Log != nil {
			h.Log.Info("sandbox callback failed", "request", req.RequestID, "err", err)
		}
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	h.mu.Lock()
	req, ok := h.async[id]
	var snapshot asyncRequest
	if ok {
		snapshot = *req
	}
	h.mu.Unlock()
	// Another token's request is as good as unknown.
	if !ok || snapshot.owner != ownerOf(r) {
		message(w, http.StatusNotFound, "No asynchronous request has the id '%s'.", gatehouse.Clip(id, 60))
		return
	}
	writeJSON(w, http.StatusOK, snapshot)
}
