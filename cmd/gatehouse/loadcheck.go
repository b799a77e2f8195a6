package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/load"
	"golang.org/x/oauth2"
)

// lastResult is the result of the last run of this process (one per
// command line), for explaining a run in which everything failed.
var lastResult *load.Result

// probe is what the request before a run got.
type probe struct {
	status int
	desc   string // the server's error_description, if any
	err    error
}

// checkToken sends the request once before a run. A token that expires
// within the run (plus a minute), or that the server refuses with 401, is
// renewed first when cl can renew it (nil: it cannot); base gets the token
// to use.
func checkToken(ctx context.Context, e *env, cl *client.Client, hc *http.Client, base *http.Request, tok *oauth2.Token, run time.Duration) (probe, error) {
	renew := func(why string) error {
		if cl == nil {
			return nil
		}
		cl.Source.InvalidateToken(tok)
		nt, err := cl.Source.TokenContext(ctx)
		if err != nil {
			return fmt.Errorf("renewing the token (%s) failed: %w", why, err)
		}
		fmt.Fprintf(e.stderr, "gatehouse: the token %s; renewed it before the run\n", why)
		tok = nt
		return nil
	}
	if !tok.Expiry.IsZero() && time.Until(tok.Expiry) < run+time.Minute {
		if err := renew("would expire during the run"); err != nil {
			return probe{}, err
		}
	}
	p := send(ctx, hc, base, tok)
	if p.status == http.StatusUnauthorized && cl != nil {
		if err := renew("was refused with 401 (" + p.desc + ")"); err != nil {
			return p, err
		}
		p = send(ctx, hc, base, tok)
	}
	base.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return p, nil
}

func send(ctx context.Context, hc *http.Client, base *http.Request, tok *oauth2.Token) probe {
	r, err := replay(base)(ctx)
	if err != nil {
		return probe{err: err}
	}
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := hc.Do(r)
	if err != nil {
		return probe{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(b, &eb)
	desc := eb.Description
	if desc == "" {
		desc = eb.Error
	}
	return probe{status: resp.StatusCode, desc: clipValue(desc)}
}

// explainFailures says why every request of a run failed, from the
// statuses seen and the request sent before the run.
func explainFailures(res *load.Result, p probe) string {
	if len(res.Status) == 0 && len(res.Errors) > 0 {
		var msgs []string
		for m := range res.Errors {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		return "no request got an answer: the server could not be reached (" + msgs[0] + "); is it running at that address?"
	}
	statuses := res.Statuses()
	if len(statuses) != 1 {
		return "every request failed, with statuses " + fmt.Sprint(statuses)
	}
	why := map[int]string{
		401: "the server refused the token (401): its session ended or it expired, even after renewal; check the server's audit trail (gatehouse audit --action session.end)",
		403: "the token is not allowed this path (403): check the consumer's scope or the user's role and Allow OData API Service",
		404: "there is no such path (404): check the path, or the gateway has no upstream for its API family",
		429: "the server's rate limit refused the requests (429): lower --rate or --concurrency, or exempt this address (--rate-limit-exempt)",
		502: "the gateway's upstream is down (502)",
		503: "the server is not ready (503): its store cannot be reached",
		504: "the gateway's upstream timed out (504)",
	}[statuses[0]]
	if why == "" {
		why = fmt.Sprintf("every request got %d", statuses[0])
	}
	if p.status == statuses[0] && p.desc != "" {
		why += "; the server said: " + p.desc
	}
	return strings.TrimSpace(why)
}
