package interactive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/window"
)

func isNotFound(err error) bool { return errors.Is(err, data.ErrNotFound) }

// change sets fields: v2 {"WindowId", "List": [{"TabName", "FieldName",
// "Value", "DatawindowName"}]}, v1 {"WindowId", "ChangeRequests":
// [{"DataWindowName", "FieldName", "Value"}]}.
func (h *Handler) change(w http.ResponseWriter, r *http.Request, s *session, version string) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "PUT")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
		return
	}
	type item struct {
		TabName        string
		FieldName      string
		Value          any
		DatawindowName string
		DataWindowName string
	}
	var req struct {
		WindowID       string
		List           []item
		ChangeRequests []item
	}
	if !decode(w, r, &req) {
		return
	}
	items := req.List
	if version == "v1" {
		items = req.ChangeRequests
	}
	if len(items) == 0 {
		field := "List"
		if version == "v1" {
			field = "ChangeRequests"
		}
		fail(w, http.StatusBadRequest, "The request has no changes: give %s.", field)
		return
	}
	wn := h.find(w, s, req.WindowID, true)
	if wn == nil {
		return
	}
	res := ok(wn.id)
	st := wn.st
	for _, it := range items {
		dwName := it.DatawindowName
		if version == "v1" {
			dwName = it.DataWindowName
		}
		tab, dw, err := target(st, version, it.TabName, dwName, it.FieldName)
		if err != nil {
			res.Status, res.Messages = StatusFailed, []string{err.Error()}
			break
		}
		st.Tab = tab
		q, err := st.Set(r.Context(), h.DB, dw, -1, it.FieldName, it.Value, false)
		if err != nil {
			if !h.userError(w, res, err) {
				return
			}
			break
		}
		if q != nil {
			if h.ask(s, wn, q, res) {
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// target finds the datawindow a change is for. v2 names the tab (the
// current one when absent) and optionally the datawindow; v1 names the
// datawindow, which must be on the current tab.
func target(st *window.State, version, tabName, dwName, field string) (*window.Tab, *window.Datawindow, error) {
	svc := st.Service
	if version == "v1" {
		tab, dw := svc.Datawindow(dwName)
		if dw == nil {
			return nil, nil, &window.Error{Message: fmt.Sprintf("Datawindow '%s' not found in window %s", gatehouse.Clip(dwName, 60), svc.WindowName)}
		}
		if tab != st.Tab {
			return nil, nil, &window.Error{Message: fmt.Sprintf("Datawindow '%s' is on tab %s, not on the current tab %s: change the tab first", dw.Name, tab.Name, st.Tab.Name)}
		}
		return tab, dw, nil
	}
	tab := st.Tab
	if tabName != "" {
		if tab = svc.Tab(tabName); tab == nil {
			return nil, nil, &window.Error{Message: fmt.Sprintf("Tab '%s' not found in window %s", gatehouse.Clip(tabName, 60), svc.WindowName)}
		}
	}
	if dwName != "" {
		t, dw := svc.Datawindow(dwName)
		if dw == nil || t != tab {
			return nil, nil, &window.Error{Message: fmt.Sprintf("Datawindow '%s' not found on tab %s", gatehouse.Clip(dwName, 60), tab.Name)}
		}
		return tab, dw, nil
	}
	for _, dw := range tab.Datawindows {
		if dw.Field(field) != nil {
			return tab, dw, nil
		}
	}
	return nil, nil, &window.Error{Message: fmt.Sprintf("Field '%s' not found on tab %s", gatehouse.Clip(field, 60), tab.Name)}
}

// ask handles a question a change raised: with response window handling
// on, it opens a response window that blocks wn (true: stop here); off, it
// answers with the default button.
func (h *Handler) ask(s *session, wn *win, q *window.Question, res *Result) bool {
	if !s.handling {
		q.Answer(wn.st, 0)
		return false
	}
	rw := &win{id: h.newID(), question: q, parent: wn}
	s.windows[rw.id] = rw
	wn.blocker = rw
	res.Status = StatusBlocked
	res.Events = append(res.Events, Event{Name: "windowopened", Data: []KeyValue{{"windowid", rw.id}}})
	return true
}

// tab changes the current tab: v2 {"WindowId", "PageName"}, v1
// {"WindowId", "PagePath": {"PageName"}}.
func (h *Handler) tab(w http.ResponseWriter, r *http.Request, s *session, version string) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "PUT")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
		return
	}
	var req struct {
		WindowID string
		PageName string
		PagePath *struct{ PageName string }
	}
	if !decode(w, r, &req) {
		return
	}
	name := req.PageName
	if version == "v1" {
		if req.PagePath == nil {
			fail(w, http.StatusBadRequest, "v1 takes the tab as PagePath: {\"PageName\": \"…\"}.")
			return
		}
		name = req.PagePath.PageName
	} else if name == "" && req.PagePath != nil {
		fail(w, http.StatusBadRequest, "v2 takes the tab as PageName, not PagePath.")
		return
	}
	wn := h.find(w, s, req.WindowID, true)
	if wn == nil {
		return
	}
	res := ok(wn.id)
	if t := wn.st.Service.Tab(name); t == nil {
		res.Status, res.Messages = StatusFailed, []string{fmt.Sprintf("Tab '%s' not found in window %s", gatehouse.Clip(name, 60), wn.st.Service.WindowName)}
	} else {
		wn.st.Tab = t
	}
	writeJSON(w, http.StatusOK, res)
}

// row adds a row (POST) or selects one (PUT): v2 {"WindowId",
// "DatawindowName", "Row"}, v1 {"WindowId", "DataWindowName", "RowNumber"}.
func (h *Handler) row(w http.ResponseWriter, r *http.Request, s *session, version string) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
		return
	}
	var req struct {
		WindowID       string
		DatawindowName string
		DataWindowName string
		Row            *int
		RowNumber      *int
	}
	if !decode(w, r, &req) {
		return
	}
	dwName, row := req.DatawindowName, req.Row
	if version == "v1" {
		dwName, row = req.DataWindowName, req.RowNumber
	}
	wn := h.find(w, s, req.WindowID, true)
	if wn == nil {
		return
	}
	res := ok(wn.id)
	tab, dw := wn.st.Service.Datawindow(dwName)
	switch {
	case dw == nil:
		res.Status, res.Messages = StatusFailed, []string{fmt.Sprintf("Datawindow '%s' not found in window %s", gatehouse.Clip(dwName, 60), wn.st.Service.WindowName)}
	case tab != wn.st.Tab:
		res.Status, res.Messages = StatusFailed, []string{fmt.Sprintf("Datawindow '%s' is on tab %s, not on the current tab %s: change the tab first", dw.Name, tab.Name, wn.st.Tab.Name)}
	case r.Method == http.MethodPost:
		n, err := wn.st.AddRow(dw)
		if err != nil {
			res.Status, res.Messages = StatusFailed, []string{err.Error()}
		} else {
			res.Events = append(res.Events, Event{Name: "rowadded", Data: []KeyValue{{"datawindow", dw.Name}, {"row", fmt.Sprint(n)}}})
		}
	case row == nil:
		field := "Row"
		if version == "v1" {
			field = "RowNumber"
		}
		res.Status, res.Messages = StatusFailed, []string{field + " is required to change the current row"}
	default:
		if err := wn.st.SelectRow(dw, *row); err != nil {
			res.Status, res.Messages = StatusFailed, []string{err.Error()}
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// Tool is a button of a window.
type Tool struct {
	WindowID string `json:"WindowId"`
	ToolName string
	Text     string
	Enabled  bool
}

var mainTools = []struct{ name, text string }{{"cb_save", "&Save"}, {"cb_clear", "C&lear"}, {"cb_close", "&Close"}}

func toolsOf(wn *win) []Tool {
	var out []Tool
	if q := wn.question; q != nil {
		for i, b := range q.Buttons {
			out = append(out, Tool{WindowID: wn.id, ToolName: fmt.Sprintf("cb_%d", i+1), Text: b, Enabled: true})
		}
		return out
	}
	for _, t := range mainTools {
		out = append(out, Tool{WindowID: wn.id, ToolName: t.name, Text: t.text, Enabled: wn.blocker == nil})
	}
	return out
}

// tools lists (GET ?windowId=) or runs (POST {"WindowId", "ToolName"}) a
// window's tools; a response window's tools answer its question.
func (h *Handler) tools(w http.ResponseWriter, r *http.Request, s *session) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		wn := h.find(w, s, windowID(r), false)
		if wn == nil {
			return
		}
		writeJSON(w, http.StatusOK, toolsOf(wn))
	case http.MethodPost:
		var req struct{ WindowID, ToolName, ToolText string }
		if !decode(w, r, &req) {
			return
		}
		wn := h.find(w, s, req.WindowID, false)
		if wn == nil {
			return
		}
		if q := wn.question; q != nil {
			h.answer(w, s, wn, q, req.ToolName)
			return
		}
		if wn.blocker != nil {
			h.find(w, s, wn.id, true) // answers the blocked error
			return
		}
		res := ok(wn.id)
		switch strings.ToLower(req.ToolName) {
		case "cb_save":
			if err := wn.st.Save(context.WithoutCancel(r.Context()), h.DB, s.user); err != nil {
				if !h.userError(w, res, err) {
					return
				}
			} else {
				res.Events = append(res.Events, Event{Name: "saved", Data: []KeyValue{{"key", wn.st.Key}}})
			}
		case "cb_clear":
			tab := wn.st.Tab
			wn.st = window.New(wn.st.Service)
			wn.st.Tab = tab
		case "cb_close":
			delete(s.windows, wn.id)
			res.Events = append(res.Events, Event{Name: "windowclosed", Data: []KeyValue{{"windowid", wn.id}}})
		default:
			res.Status, res.Messages = StatusFailed, []string{fmt.Sprintf("Tool '%s' not found in window %s", gatehouse.Clip(req.ToolName, 60), wn.st.Service.WindowName)}
		}
		writeJSON(w, http.StatusOK, res)
	default:
		w.Header().Set("Allow", "GET, POST")
		fail(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
	}
}

// answer clicks a response window's button: the question's answer is
// applied to the window it blocked, and the response window closes.
func (h *Handler) answer(w http.ResponseWriter, s *session, rw *win, q *window.Question, tool string) {
	n := -1
	for i := range q.Buttons {
		if strings.EqualFold(tool, fmt.Sprintf("cb_%d", i+1)) {
			n = i
		}
	}
	if n < 0 {
		res := ok(rw.id)
		res.Status, res.Messages = StatusFailed, []string{fmt.Sprintf("Tool '%s' not found in response window %s: it has cb_1 to cb_%d", gatehouse.Clip(tool, 60), q.Name, len(q.Buttons))}
		writeJSON(w, http.StatusOK, res)
		return
	}
	q.Answer(rw.parent.st, n)
	rw.parent.blocker = nil
	delete(s.windows, rw.id)
	res := ok(rw.parent.id)
	res.Events = append(res.Events, Event{Name: "windowclosed", Data: []KeyValue{{"windowid", rw.id}}})
	writeJSON(w, http.StatusOK, res)
}
