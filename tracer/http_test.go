package tracer_test

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

type httpServer struct {
	ln   net.Listener
	srv  *http.Server
	port atomic.Uint32
}

func startHTTP(t *testing.T, addr string) *httpServer {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	h := &httpServer{ln: ln}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
			h.port.Store(uint32(ap.Port))
		}
		w.Write([]byte("ok"))
	})}
	go h.srv.Serve(ln)
	return h
}

func (h *httpServer) peerPort() uint16 { return uint16(h.port.Load()) }

func (h *httpServer) Close() { h.srv.Close() }

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
