// Package interactive simulates P21's Interactive API, the stateful API
// that drives windows as a user would: a session per token, windows
// opened by service name or title, field changes, tabs, list rows, tools
// (buttons), saving, and response windows — questions the client answers
// with a tool (cb_1 Yes, cb_2 No), or that are answered with their
// default when the session was started with ResponseWindowHandlingEnabled
// false. Both the v2 request forms and the v1 ones are served.
//
// It acts only as a real user: a request without the user the gateway
// names (X-Gatehouse-User) is refused, as P21 refuses it.
package interactive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/window"
	"github.com/gatehouse/gatehouse/wire"
)

// Prefix is where the API lives (after the UI server's /uiserver0).
const Prefix = "/api/ui/interactive"

// Limits of the simulation.
const (
	// IdleTimeout ends a session unused this long, as P21 does.
	IdleTimeout = 6 * time.Minute
	maxSessions = 1000
	maxWindows  = 16
	maxBody     = 1 << 20
)

// Result statuses.
const (
	StatusOK      = 1
	StatusFailed  = 2
	StatusBlocked = 3
)

// Handler serves the Interactive API.
type Handler struct {
	DB    *data.DB
	Clock gatehouse.Clock
	// NewID makes session and window ids; default random UUIDs.
	NewID func() string

	mu       sync.Mutex
	sessions map[string]*session // by middleware session
}

type session struct {
	id, user, key string
	handling      bool
	created, used time.Time
	windows       map[string]*win
}

type win struct {
	id       string
	st       *window.State
	question *window.Question // a response window
	parent   *win             // of a response window
	blocker  *win             // the response window open on this one
}

// Match reports whether a (lower-case) path is the Interactive API's.
func Match(lower string) bool { return lower == Prefix || strings.HasPrefix(lower, Prefix+"/") }

const errorType = "P21.UI.Common.UiServerUserErrorException"

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"ErrorMessage": fmt.Sprintf(format, args...), "ErrorType": errorType})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Result is the answer to an action on a window.
type Result struct {
	Status   int
	WindowID string `json:"WindowId"`
	Events   []Event
	Messages []string
}

// Event reports what an action caused: a window opened or closed.
type Event struct {
	Name string
	Data []KeyValue
}

// KeyValue is an event's datum.
type KeyValue struct{ Key, Value string }

func ok(id string) *Result {
	return &Result{Status: StatusOK, WindowID: id, Events: []Event{}, Messages: []string{}}
}

func (h *Handler) newID() string {
	if h.NewID != nil {
		return h.NewID()
	}
	return uuid.NewString()
}

func (h *Handler) now() time.Time {
	if h.Clock == nil {
		return time.Now()
	}
	return h.Clock.Now()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get(wire.HeaderUser)
	if user == "" {
		// SPEC §4.4: the Interactive API acts only as a real user.
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "invalid_user", "error_description": "Error retrieving/validating user"})
		return
	}
	key := r.Header.Get(wire.HeaderSessionID) + "\x00" + r.Header.Get(wire.HeaderConsumerUID) + "\x00" + strings.ToLower(user)
	p := strings.TrimSuffix(strings.ToLower(r.URL.Path), "/")
	rest := strings.TrimPrefix(p, Prefix)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	if rest == "/sessions" {
		h.sessionsAPI(w, r, key, user)
		return
	}
	version, op, found := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	if !found || (version != "v1" && version != "v2") {
		fail(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '%s'.", gatehouse.Clip(r.URL.Path, 200))
		return
	}
	s := h.sessions[key]
	if s == nil {
		fail(w, http.StatusNotFound, "Session not found or expired: start one with POST %s/sessions.", Prefix)
		return
	}
	s.used = h.now()
	switch op {
	case "window":
		h.windowAPI(w, r, s, version)
	case "data":
		h.dataAPI(w, r, s, version)
	case "change":
		h.change(w, r, s, version)
	case "tab":
		h.tab(w, r, s, version)
	case "row":
		h.row(w, r, s, version)
	case "tools":
		h.tools(w, r, s)
	default:
		fail(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '%s'.", gatehouse.Clip(r.URL.Path, 200))
	}
}

// expire ends sessions idle longer than IdleTimeout.
func (h *Handler) expire() {
	now := h.now()
	for k, s := range h.sessions {
		if now.Sub(s.used) > IdleTimeout {
			delete(h.sessions, k)
		}
	}
}

type sessionInfo struct {
	ID                            string `json:"Id"`
	SessionID                     string `json:"SessionId"`
	UserName                      string
	Status                        string
	ResponseWindowHandlingEnabled bool
	Created                       string
	WindowIDs                     []string `json:"WindowIds"`
}

func info(s *session, status string) sessionInfo {
	ids := []string{}
	for id := range s.windows {
		ids = append(ids, id)
	}
	sortStrings(ids)
	return sessionInfo{ID: s.id, SessionID: s.id, UserName: s.user, Status: status, ResponseWindowHandlingEnabled: s.handling,
		Created: s.created.UTC().Format("2006-01-02T15:04:05"), WindowIDs: ids}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (h *Handler) sessionsAPI(w http.ResponseWriter, r *http.Request, key, user string) {
	switch r.Method {
	case http.MethodPost:
		var req struct{ ResponseWindowHandlingEnabled bool }
		if !decodeOptional(w, r, &req) {
			return
		}
		if h.sessions == nil {
			h.sessions = map[string]*session{}
		}
		if len(h.sessions) >= maxSessions && h.sessions[key] == nil {
			// The least recently used session makes room.
			var oldest *session
			for _, s := range h.sessions {
				if oldest == nil || s.used.Before(oldest.used) {
					oldest = s
				}
			}
			delete(h.sessions, oldest.key)
		}
		now := h.now()
		s := &session{id: h.newID(), user: user, key: key, handling: req.ResponseWindowHandlingEnabled, created: now, used: now, windows: map[string]*win{}}
		h.sessions[key] = s
		writeJSON(w, http.StatusOK, info(s, "Active"))
	case http.MethodGet, http.MethodHead:
		out := []sessionInfo{}
		for _, s := range h.sessions {
			if strings.EqualFold(s.user, user) {
				out = append(out, info(s, "Active"))
			}
		}
		writeJSON(w, http.StatusOK, out)
	case http.MethodDelete:
		s := h.sessions[key]
		if s == nil {
			fail(w, http.StatusNotFound, "Session not found or expired.")
			return
		}
		delete(h.sessions, key)
		writeJSON(w, http.StatusOK, info(s, "Ended"))
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
	}
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "The request body could not be read.")
		return nil, false
	}
	if len(b) > maxBody {
		fail(w, http.StatusRequestEntityTooLarge, "The request body is larger than %d bytes.", maxBody)
		return nil, false
	}
	return bytes.TrimSpace(b), true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "The request body is not the expected JSON: %s.", gatehouse.Clip(err.Error(), 200))
		return false
	}
	if dec.More() {
		fail(w, http.StatusBadRequest, "The request body has more after its JSON.")
		return false
	}
	return true
}

func decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	if len(b) == 0 {
		return true
	}
	if err := json.Unmarshal(b, v); err != nil {
		fail(w, http.StatusBadRequest, "The request body is not the expected JSON: %s.", gatehouse.Clip(err.Error(), 200))
		return false
	}
	return true
}

// windowID reads ?windowId= or ?id=.
func windowID(r *http.Request) string {
	q := r.URL.Query()
	for k, v := range q {
		if strings.EqualFold(k, "windowId") || strings.EqualFold(k, "id") {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}

// find finds an open window; mainOnly refuses a response window, and a
// window a response window blocks.
func (h *Handler) find(w http.ResponseWriter, s *session, id string, mainOnly bool) *win {
	if id == "" {
		fail(w, http.StatusBadRequest, "Window ID was not provided.")
		return nil
	}
	wn := s.windows[id]
	if wn == nil {
		fail(w, http.StatusNotFound, "Window not found: %s. It was closed, or belongs to another session.", gatehouse.Clip(id, 60))
		return nil
	}
	if mainOnly && wn.question != nil {
		fail(w, http.StatusBadRequest, "Window %s is a response window: answer it with POST %s/v2/tools (cb_1, cb_2).", id, Prefix)
		return nil
	}
	if mainOnly && wn.blocker != nil {
		q := wn.blocker.question
		fail(w, http.StatusBadRequest, "Unable to process request on window %s since response window %s blocks it: %s (%s) - %s",
			id, wn.blocker.id, q.Name, q.Title, q.Message)
		return nil
	}
	return wn
}

func (h *Handler) windowAPI(w http.ResponseWriter, r *http.Request, s *session, version string) {
	switch r.Method {
	case http.MethodPost:
		var req struct{ ServiceName, Title, Name string }
		if !decode(w, r, &req) {
			return
		}
		svc := window.LookupService(req.ServiceName)
		if svc == nil && req.Title != "" {
			svc = window.ByTitle(req.Title)
		}
		if svc == nil {
			fail(w, http.StatusBadRequest, "No window for ServiceName '%s' or Title '%s'. The sandbox has: %s.",
				gatehouse.Clip(req.ServiceName, 60), gatehouse.Clip(req.Title, 60), serviceList())
			return
		}
		if len(s.windows) >= maxWindows {
			fail(w, http.StatusBadRequest, "The session has %d windows open, the sandbox's most: close one first.", maxWindows)
			return
		}
		wn := &win{id: h.newID(), st: window.New(svc)}
		s.windows[wn.id] = wn
		writeJSON(w, http.StatusOK, map[string]any{"WindowId": wn.id, "Title": svc.Title, "Name": svc.WindowName, "ServiceName": svc.Name,
			"Status": StatusOK, "CurrentTab": wn.st.Tab.Name, "TabPageList": tabList(svc), "DataElements": wn.st.Elements(false),
			"Events": []Event{}, "Messages": []string{}})
	case http.MethodGet, http.MethodHead:
		wn := h.find(w, s, windowID(r), false)
		if wn == nil {
			return
		}
		writeJSON(w, http.StatusOK, describe(wn))
	case http.MethodDelete:
		wn := h.find(w, s, windowID(r), false)
		if wn == nil {
			return
		}
		if wn.question != nil {
			fail(w, http.StatusBadRequest, "Window %s is a response window: answer it with POST %s/v2/tools (cb_1, cb_2).", wn.id, Prefix)
			return
		}
		if wn.blocker != nil {
			delete(s.windows, wn.blocker.id)
		}
		delete(s.windows, wn.id)
		res := ok(wn.id)
		res.Events = append(res.Events, Event{Name: "windowclosed", Data: []KeyValue{{"windowid", wn.id}}})
		writeJSON(w, http.StatusOK, res)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
	}
}

func serviceList() string {
	var names []string
	for _, s := range window.Services() {
		names = append(names, s.Name+" ("+s.Title+")")
	}
	return strings.Join(names, ", ")
}

func tabList(svc *window.Service) []map[string]string {
	var out []map[string]string
	for _, t := range svc.Tabs {
		out = append(out, map[string]string{"Name": t.Name, "Title": t.Title})
	}
	return out
}

// describe is a window's definition and data.
func describe(wn *win) map[string]any {
	if q := wn.question; q != nil {
		return map[string]any{"Definition": map[string]any{"Title": q.Title, "Name": q.Name, "Datawindows": map[string]any{},
			"Id": wn.id, "TabPageList": []any{}}, "Data": []any{}}
	}
	svc := wn.st.Service
	dws := map[string]any{}
	var tabs []map[string]any
	for _, t := range svc.Tabs {
		var names []string
		for _, d := range t.Datawindows {
			names = append(names, d.Name)
			var fields []map[string]any
			for _, f := range d.Fields {
				fd := map[string]any{"Name": f.Name, "Label": f.Label, "DataType": string(f.Type), "Required": f.Required, "ReadOnly": f.ReadOnly || f.Key}
				if len(f.Choices) > 0 {
					var vv []map[string]string
					for _, c := range f.Choices {
						vv = append(vv, map[string]string{"Code": c.Code, "Display": c.Display})
					}
					fd["ValidValues"] = vv
				}
				fields = append(fields, fd)
			}
			typ := "Form"
			if d.List {
				typ = "List"
			}
			dws[d.Name] = map[string]any{"Name": d.Name, "Type": typ, "TabName": t.Name, "Fields": fields,
				"CurrentRow": wn.st.Current(d), "RowCount": len(wn.st.Rows(d))}
		}
		tabs = append(tabs, map[string]any{"Name": t.Name, "Title": t.Title, "Datawindows": names})
	}
	return map[string]any{
		"Definition": map[string]any{"Title": svc.Title, "Name": svc.WindowName, "ServiceName": svc.Name, "Id": wn.id,
			"Datawindows": dws, "TabPageList": tabs},
		"Data":       wn.st.Elements(false),
		"CurrentTab": wn.st.Tab.Name,
		"Changed":    wn.st.Changed,
	}
}

func (h *Handler) dataAPI(w http.ResponseWriter, r *http.Request, s *session, version string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		wn := h.find(w, s, windowID(r), false)
		if wn == nil {
			return
		}
		if wn.question != nil {
			writeJSON(w, http.StatusOK, []any{})
			return
		}
		writeJSON(w, http.StatusOK, wn.st.Elements(false))
	case http.MethodPut:
		b, okb := readBody(w, r)
		if !okb {
			return
		}
		var id string
		if version == "v2" {
			// v2 takes the window id alone, as a JSON string.
			if err := json.Unmarshal(b, &id); err != nil {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"ErrorMessage": "Window ID was not provided: in v2 the body is the window id as a JSON string (\"…\"), not an object.", "ErrorType": errorType})
				return
			}
		} else {
			var req struct{ WindowID string }
			if err := json.Unmarshal(b, &req); err != nil {
				fail(w, http.StatusBadRequest, "The request body is not the expected JSON ({\"WindowId\": \"…\"}).")
				return
			}
			id = req.WindowID
		}
		wn := h.find(w, s, strings.TrimSpace(id), true)
		if wn == nil {
			return
		}
		res := ok(wn.id)
		if err := wn.st.Save(r.Context(), h.DB, s.user); err != nil {
			if !h.userError(w, res, err) {
				return
			}
		} else {
			res.Events = append(res.Events, Event{Name: "saved", Data: []KeyValue{{"key", wn.st.Key}}})
		}
		writeJSON(w, http.StatusOK, res)
	case http.MethodDelete:
		wn := h.find(w, s, windowID(r), true)
		if wn == nil {
			return
		}
		tab := wn.st.Tab
		wn.st = window.New(wn.st.Service)
		wn.st.Tab = tab
		writeJSON(w, http.StatusOK, ok(wn.id))
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
	}
}

// userError turns a refusal of the window into a failed result (true), or
// answers an internal error itself (false).
func (h *Handler) userError(w http.ResponseWriter, res *Result, err error) bool {
	switch e := err.(type) {
	case *window.Error:
		res.Status, res.Messages = StatusFailed, []string{e.Message}
		return true
	case *data.ValidationError:
		res.Status, res.Messages = StatusFailed, e.Messages()
		return true
	}
	if isNotFound(err) {
		res.Status, res.Messages = StatusFailed, []string{"The record no longer exists: " + err.Error()}
		return true
	}
	fail(w, http.StatusInternalServerError, "The sandbox could not complete the request: %s", gatehouse.Clip(err.Error(), 200))
	return false
}
