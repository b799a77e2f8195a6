package p21

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/server/render"
)

// Issuer is what the handlers need from the token service.
type Issuer interface {
	PasswordToken(ctx context.Context, username, password string, m issue.Meta) (*issue.Issued, error)
	ConsumerToken(ctx context.Context, key, username string, m issue.Meta) (*issue.Issued, error)
	RefreshToken(ctx context.Context, refresh string, m issue.Meta) (*issue.Issued, error)
}

// Handler serves everything under /api/security/.
type Handler struct {
	Issuer Issuer
	// Format chooses JSON or XML (--token-format).
	Format render.Format
	// V1 enables the deprecated header endpoint; when false it answers 410.
	V1 bool
	// Remote gives the client address of a request.
	Remote func(*http.Request) string
	// Observe counts a token request by flow and outcome; may be nil.
	Observe func(flow, outcome string)
	Log     *slog.Logger
}

// Paths of the endpoints.
const (
	PathV2     = "/api/security/token/v2"
	PathV1     = "/api/security/token"
	PathPrefix = "/api/security/"
)

// Metrics flow labels of requests refused before their flow was known;
// every label is p21.<version>.<flow>.
const (
	FlowUnknownV2 = "p21.v2.unknown"
	FlowUnknownV1 = "p21.v1.unknown"
)

// MarkDeprecated sets the headers every V1 answer carries (RFC 9745): the
// endpoint is deprecated, since before this server existed, in favour of V2.
func MarkDeprecated(h http.Header) {
	h.Set("Deprecation", "@1640995200")
	h.Set("Link", `</api/security/token/v2>; rel="successor-version"`)
}

// ServeHTTP dispatches /api/security/… requests. Paths match
// case-insensitively and with or without a trailing slash, as the P21
// middleware does.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := h.Format.Choose(r.Header.Get("Accept"))
	p := strings.TrimSuffix(strings.ToLower(r.URL.Path), "/")
	switch p {
	case PathV2:
		if !h.method(w, r, f) {
			return
		}
		h.v2(w, r, f)
	case PathV1:
		if !h.V1 {
			render.Error(w, f, &gatehouse.Error{Status: http.StatusGone, Code: gatehouse.CodeGone,
				Description: "The V1 token endpoint is turned off on this server; use POST /api/security/token/v2 with the credentials in the body."})
			return
		}
		MarkDeprecated(w.Header())
		if !h.method(w, r, f) {
			return
		}
		h.v1(w, r, f)
	default:
		render.Error(w, f, &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
			Description: "There is no endpoint " + gatehouse.Clip(r.URL.Path, 64) + "; use /api/security/token/v2"})
	}
}

func (h *Handler) method(w http.ResponseWriter, r *http.Request, f render.Format) bool {
	if r.Method == http.MethodPost {
		return true
	}
	e := gatehouse.ErrInvalidRequest("method %s is not allowed; use POST", gatehouse.Clip(r.Method, 64))
	e.Status = http.StatusMethodNotAllowed
	render.Error(w, f, e.WithHeader("Allow", http.MethodPost))
	return false
}

// readBody reads at most MaxBody bytes; a larger body is a 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *gatehouse.Error) {
	return render.ReadBody(w, r, MaxBody)
}

func (h *Handler) v2(w http.ResponseWriter, r *http.Request, f render.Format) {
	body, e := readBody(w, r)
	if e != nil {
		h.fail(w, f, FlowUnknownV2, "invalid", e)
		return
	}
	req, e := ParseV2(r.Header.Get("Content-Type"), body)
	if e != nil {
		h.fail(w, f, FlowUnknownV2, "invalid", e)
		return
	}
	flow, e := req.Flow()
	if e != nil {
		h.fail(w, f, FlowUnknownV2, "invalid", e)
		return
	}
	h.issue(w, r, f, "p21.v2", flow, req)
}

func (h *Handler) v1(w http.ResponseWriter, r *http.Request, f render.Format) {
	// The body is ignored, but still bounded and drained.
	if _, e := readBody(w, r); e != nil {
		h.fail(w, f, FlowUnknownV1, "invalid", e)
		return
	}
	req, flow, e := ParseV1(r.Header)
	if e != nil {
		h.fail(w, f, FlowUnknownV1, "invalid", e)
		return
	}
	h.issue(w, r, f, "p21.v1", flow, req)
}

// remote is the client address: Remote's answer, else the connection's.
func (h *Handler) remote(r *http.Request) string {
	if h.Remote != nil {
		return h.Remote(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (h *Handler) issue(w http.ResponseWriter, r *http.Request, f render.Format, via string, flow Flow, req Request) {
	m := issue.Meta{Remote: h.remote(r), Via: via}
	var (
		iss *issue.Issued
		err error
	)
	switch flow {
	case FlowUser:
		iss, err = h.Issuer.PasswordToken(r.Context(), req.Username, req.Password, m)
	case FlowConsumer:
		iss, err = h.Issuer.ConsumerToken(r.Context(), req.ClientSecret, req.Username, m)
	case FlowRefresh:
		iss, err = h.Issuer.RefreshToken(r.Context(), req.RefreshToken, m)
	}
	label := via + "." + flow.String()
	if err != nil {
		var pe *gatehouse.Error
		if !errors.As(err, &pe) {
			pe = gatehouse.ErrStoreDown(err)
		}
		outcome := "refused"
		if pe.Status >= 500 {
			outcome = "error"
			if h.Log != nil {
				h.Log.WarnContext(r.Context(), "token request failed", "flow", label, "err", err)
			}
		}
		h.fail(w, f, label, outcome, pe)
		return
	}
	if h.Observe != nil {
		h.Observe(label, "issued")
	}
	if iss.Consumer != nil {
		writeConsumer(w, f, iss)
		return
	}
	writeUser(w, f, iss)
}

func (h *Handler) fail(w http.ResponseWriter, f render.Format, flow, outcome string, e *gatehouse.Error) {
	if h.Observe != nil {
		h.Observe(flow, outcome)
	}
	render.Error(w, f, e)
}

// UserResponse is the V1/V2 user-flow body, fields in the seed's order.
type UserResponse struct {
	AccessToken      string `json:"AccessToken"`
	RefreshToken     string `json:"RefreshToken"`
	ExpiresInSeconds int64  `json:"ExpiresInSeconds"`
	TokenType        string `json:"TokenType"`
}

// ConsumerResponse is the V1/V2 consumer-flow body, fields in the seed's order.
type ConsumerResponse struct {
	AccessToken  string  `json:"AccessToken"`
	TokenType    string  `json:"TokenType"`
	UserName     string  `json:"UserName"`
	ExpiresIn    int64   `json:"ExpiresIn"`
	RefreshToken string  `json:"RefreshToken"`
	Scope        string  `json:"Scope"`
	SessionID    string  `json:"SessionId"`
	ConsumerUID  string  `json:"ConsumerUid"`
	AppKey       *string `json:"AppKey"`
}

// XMLResponse is the XML body of both flows: the seed's TokenResponse,
// with ExpiresIn (never ExpiresInSeconds), and the consumer fields as
// further elements for consumer tokens. AppKey, null in JSON, is an empty
// element.
type XMLResponse struct {
	XMLName      xml.Name `xml:"TokenResponse"`
	AccessToken  string   `xml:"AccessToken"`
	TokenType    string   `xml:"TokenType"`
	ExpiresIn    int64    `xml:"ExpiresIn"`
	RefreshToken string   `xml:"RefreshToken"`
	UserName     *string  `xml:"UserName,omitempty"`
	Scope        *string  `xml:"Scope,omitempty"`
	SessionID    *string  `xml:"SessionId,omitempty"`
	ConsumerUID  *string  `xml:"ConsumerUid,omitempty"`
	AppKey       *string  `xml:"AppKey,omitempty"`
}

func writeUser(w http.ResponseWriter, f render.Format, iss *issue.Issued) {
	if f != render.XML {
		// UserResponse, field by field.
		o := render.NewObject()
		o.String("AccessToken", iss.AccessToken)
		o.String("RefreshToken", iss.RefreshToken)
		o.Int("ExpiresInSeconds", iss.ExpiresIn)
		o.String("TokenType", "Bearer")
		render.WriteObject(w, http.StatusOK, o)
		return
	}
	render.Write(w, f, http.StatusOK,
		UserResponse{AccessToken: iss.AccessToken, RefreshToken: iss.RefreshToken, ExpiresInSeconds: iss.ExpiresIn, TokenType: "Bearer"},
		XMLResponse{AccessToken: iss.AccessToken, TokenType: "Bearer", ExpiresIn: iss.ExpiresIn, RefreshToken: iss.RefreshToken})
}

func writeConsumer(w http.ResponseWriter, f render.Format, iss *issue.Issued) {
	uid := iss.Consumer.UIDString()
	if f == render.XML {
		empty := ""
		render.Write(w, f, http.StatusOK, nil, XMLResponse{
			AccessToken: iss.AccessToken, TokenType: "Bearer", ExpiresIn: iss.ExpiresIn, RefreshToken: iss.RefreshToken,
			UserName: &iss.Session.Username, Scope: &iss.Session.Scope, SessionID: &iss.Session.ID, ConsumerUID: &uid, AppKey: &empty,
		})
		return
	}
	// ConsumerResponse, field by field.
	o := render.NewObject()
	o.String("AccessToken", iss.AccessToken)
	o.String("TokenType", "Bearer")
	o.String("UserName", iss.Session.Username)
	o.Int("ExpiresIn", iss.ExpiresIn)
	o.String("RefreshToken", iss.RefreshToken)
	o.String("Scope", iss.Session.Scope)
	o.String("SessionId", iss.Session.ID)
	o.String("ConsumerUid", uid)
	o.Null("AppKey")
	render.WriteObject(w, http.StatusOK, o)
}
