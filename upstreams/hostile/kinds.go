package hostile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// The misbehaviours. Each reads the request the way its real counterpart would, then
// misbehaves once; the connection ends when serve returns.
func init() {
	register(Kind{
		Name:   "garbage-status",
		Help:   "answers with a line that is not HTTP (an SSH banner: the wrong service on the port)",
		Expect: []string{"other"},
		serve: func(s *Server, c net.Conn) {
			if readRequest(c) == nil {
				_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
			}
		},
	})
	register(Kind{
		Name:   "huge-header",
		Help:   "sends a header block of Options.HeaderBytes (2 MiB) before a 2-byte body (a cookie bomb, a runaway proxy)",
		Expect: []string{"other"},
		serve: func(s *Server, c net.Conn) {
			if readRequest(c) != nil {
				return
			}
			// The client stops reading at its limit and closes: the write then fails.
			_, _ = c.Write(hugeHeaderResponse(s.opt.HeaderBytes))
		},
	})
	register(Kind{
		Name:   "short-body",
		Help:   "promises Content-Length: 1000, sends 10 bytes and closes (a crash mid-response, a truncating middlebox)",
		Expect: []string{"other"},
		serve: func(s *Server, c net.Conn) {
			if readRequest(c) == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
			}
		},
	})
	register(Kind{
		Name:   "bad-chunked",
		Help:   "sends a chunked body whose second chunk size is not hex, then closes",
		Expect: []string{"other"},
		serve: func(s *Server, c net.Conn) {
			if readRequest(c) == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n")
			}
		},
	})
	register(Kind{
		Name:   "trickle",
		Help:   "sends a valid 40-byte response one byte per Options.Interval (1 s): longer than the default 30 s request timeout",
		Expect: []string{"timeout"},
		serve: func(s *Server, c net.Conn) {
			if readRequest(c) != nil {
				return
			}
			resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			for i := 0; i < len(resp); i++ {
				if !s.sleep(s.opt.Interval) {
					return
				}
				if _, err := io.WriteString(c, resp[i:i+1]); err != nil {
					return // the client gave up
				}
			}
		},
	})
	register(Kind{
		Name:   "never-answers",
		Help:   "accepts, reads the request and never answers (a hung backend, a blackholing middlebox)",
		Expect: []string{"timeout"},
		serve: func(s *Server, c net.Conn) {
			// Read until the client gives up or the server closes the connection.
			_, _ = io.Copy(io.Discard, c)
		},
	})
	register(Kind{
		Name: "rst-on-accept",
		Help: "resets every connection as soon as it is accepted (a full backlog, a firewall)",
		// Whether the RST arrives before the client's dial returned or its request was
		// written (reset_write) or after the write (reset_read) is the kernel's
		// ordering of the server's accept and the client's write.
		Expect: []string{"reset_write", "reset_read"},
		serve: func(s *Server, c net.Conn) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		},
	})
	register(Kind{
		Name:   "continue-then-close",
		Help:   "answers \"100 Continue\" and closes before the final response",
		Expect: []string{"other"},
		serve: func(s *Server, c net.Conn) {
			if readRequest(c) == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
		},
	})
	register(Kind{
		Name: "early-response",
		Help: "answers (200, Connection: close) after the request head, before reading the body, and closes with the body unread: an RST follows the response",
		// Linux delivers the response bytes queued before the RST; a client that reads
		// the answer it was given succeeds.
		Expect: []string{""},
		serve: func(s *Server, c net.Conn) {
			if readHead(c) == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
			}
		},
	})
}

// readRequest reads one whole request, body included.
func readRequest(c net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

// readHead reads the request up to the blank line after its headers, a byte at a time so
// that nothing of the body leaves the socket: closing then makes the kernel send an RST.
func readHead(c net.Conn) error {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) > 64<<10 {
			return errors.New("request head over 64 KiB")
		}
		if _, err := c.Read(b); err != nil {
			return err
		}
		head = append(head, b[0])
	}
	return nil
}

var hugeHeaders sync.Map // header block size -> the whole response, built once

// hugeHeaderResponse is a 200 whose header block holds n bytes of 1 KiB X-Pad headers.
func hugeHeaderResponse(n int) []byte {
	if b, ok := hugeHeaders.Load(n); ok {
		return b.([]byte)
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	pad := strings.Repeat("a", 1000)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "X-Pad-%05d: %s\r\n", i, pad)
	}
	b.WriteString("Content-Length: 2\r\n\r\nok")
	v, _ := hugeHeaders.LoadOrStore(n, b.Bytes())
	return v.([]byte)
}
