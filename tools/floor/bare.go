package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bare durable server. The floor runs itself with -bare-durable to
// serve, with no gatehouse code at all, POST /append: the request's body
// is appended to a log file and answered only once an fsync that covers it
// has returned, the requests that arrive during one fsync sharing the next
// (group commit, as gatehouse's store commits its sessions). Its rate over
// /healthz's, at the same concurrency, is the ceiling on this machine of
// any endpoint that answers after a durable write: the figure a durable
// token's ratio can approach but not pass.

// bareRecord is the body of each append: about the size of a session row.
const bareRecord = `{"id":"07113e5c-3431-4164-aecb-aeeb8b6753ba","consumer":"1","flow":"consumer","scope":"/api;/p21sdk","created":1796223504000,"expires":2147483647000,"remote":"127.0.0.1"}`

// maxBareRecord bounds an append's body.
const maxBareRecord = 4 << 10

// errLogClosed is what an append gets once the log is closed.
var errLogClosed = errors.New("log closed")

// groupLog appends records to a file and acknowledges each only after an
// fsync that covers it. One goroutine writes and syncs; the records that
// arrive meanwhile wait for the next write and sync, together.
type groupLog struct {
	f    *os.File
	wake chan struct{} // 1-buffered: records are pending

	mu      sync.Mutex
	buf     []byte
	waiting []chan error
	closed  bool
	done    chan struct{} // closed when the writer has stopped
}

func openGroupLog(path string) (*groupLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	l := &groupLog{f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// Append adds rec and a newline to the log and returns once both are on
// disk, or with the error that kept them from it.
func (l *groupLog) Append(rec []byte) error {
	ch := make(chan error, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errLogClosed
	}
	l.buf = append(append(l.buf, rec...), '\n')
	l.waiting = append(l.waiting, ch)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return <-ch
}

func (l *groupLog) run() {
	defer close(l.done)
	var spare []byte
	for range l.wake {
		l.mu.Lock()
		buf, waiting := l.buf, l.waiting
		l.buf, l.waiting = spare[:0], nil
		closed := l.closed
		l.mu.Unlock()
		if len(waiting) > 0 {
			_, err := l.f.Write(buf)
			if err == nil {
				err = l.f.Sync()
			}
			for _, ch := range waiting {
				ch <- err
			}
		}
		spare = buf
		if closed {
			return
		}
	}
}

// Close answers the records still pending (written and synced) and closes
// the file; later appends get errLogClosed.
func (l *groupLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	// The writer sees closed on its next turn, after the last records.
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
	return l.f.Close()
}

// bareHandler serves GET /healthz and /readyz, and POST /append onto l.
func bareHandler(l *groupLog) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("POST /append", func(w http.ResponseWriter, r *http.Request) {
		rec, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBareRecord))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, fmt.Sprintf("record over %d bytes", maxBareRecord), http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "reading the record: "+err.Error(), http.StatusBadRequest)
			return
		case len(rec) == 0:
			http.Error(w, "empty record", http.StatusBadRequest)
			return
		}
		if err := l.Append(rec); err != nil {
			http.Error(w, "appending the record: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	return mux
}

// serveBare is the -bare-durable process: it serves bareHandler on addr
// with its log in dir until interrupted.
func serveBare(addr, dir string) error {
	l, err := openGroupLog(filepath.Join(dir, "bare.log"))
	if err != nil {
		return err
	}
	defer l.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: bareHandler(l), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startBare runs this program again as the bare durable server on the
// port after the signing servers', and waits until it is ready.
func startBare(c config, dir string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(c.addr)
	p, _ := strconv.Atoi(port)
	addr := net.JoinHostPort(host, strconv.Itoa(p+4))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-bare-durable", addr, "-bare-dir", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, data: dir}
	return s, waitReady(s.base)
}

// bareFlow appends a session-sized record through the bare server.
func bareFlow(c config, srv *server) *flow {
	return &flow{name: bareFlowName, ref: "healthz", conc: c.conc, srv: srv,
		req: func(ctx context.Context) (*http.Request, error) {
			r, err := http.NewRequestWithContext(ctx, "POST", srv.base+"/append", strings.NewReader(bareRecord))
			if err == nil {
				r.Header.Set("Content-Type", "application/json")
			}
			return r, err
		}}
}

const bareFlowName = "durable append, bare (no gatehouse)"
