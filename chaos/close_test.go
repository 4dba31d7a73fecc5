package chaos

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestParseCloseMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    CloseMode
		wantErr string
	}{
		{in: "fin", want: CloseFIN},
		{in: "rst", want: CloseRST},
		{in: " RST ", want: CloseRST},
		{in: "", wantErr: `close mode "": unknown (known: fin, rst)`},
		{in: "reset", wantErr: `close mode "reset": unknown (known: fin, rst)`},
	} {
		got, err := ParseCloseMode(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseCloseMode(%q) = %q, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCloseMode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func readErr(t *testing.T, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [16]byte
	n, err := c.Read(buf[:])
	if n != 0 {
		t.Fatalf("read %d bytes %q, want none", n, buf[:n])
	}
	return err
}

func TestCloseFINGivesPeerEOF(t *testing.T) {
	client, server := tcpPair(t)
	if err := CloseFIN.Close(server); err != nil {
		t.Fatal(err)
	}
	if err := readErr(t, client); err != io.EOF {
		t.Fatalf("client read after fin close: %v, want EOF", err)
	}
}

func TestZeroCloseModeIsFIN(t *testing.T) {
	client, server := tcpPair(t)
	if err := CloseMode("").Close(server); err != nil {
		t.Fatal(err)
	}
	if err := readErr(t, client); err != io.EOF {
		t.Fatalf("client read after zero-mode close: %v, want EOF", err)
	}
}

func TestCloseRSTGivesPeerReset(t *testing.T) {
	client, server := tcpPair(t)
	if err := CloseRST.Close(server); err != nil {
		t.Fatal(err)
	}
	if err := readErr(t, client); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after rst close: %v, want ECONNRESET", err)
	}
}

func TestUnknownCloseModeStillCloses(t *testing.T) {
	client, server := tcpPair(t)
	if err := CloseMode("silent").Close(server); err == nil {
		t.Error("Close in unknown mode returned no error")
	}
	if err := readErr(t, client); err != io.EOF {
		t.Fatalf("client read after unknown-mode close: %v, want EOF", err)
	}
}

func TestUnreadSeesKernelBufferedBytes(t *testing.T) {
	client, server := tcpPair(t)
	if Unread(server) {
		t.Fatal("Unread = true before the client wrote anything")
	}
	if _, err := client.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	// Loopback delivery is near-instant; poll a bounded number of times.
	deadline := time.Now().Add(2 * time.Second)
	for !Unread(server) {
		if time.Now().After(deadline) {
			t.Fatal("Unread stayed false 2s after the client wrote 3 bytes")
		}
		time.Sleep(time.Millisecond)
	}
	// Peeking must not consume: all three bytes are still there.
	buf := make([]byte, 3)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "GET" {
		t.Fatalf("read after Unread: %q, %v; want GET", buf, err)
	}
	if Unread(server) {
		t.Fatal("Unread = true after the bytes were read")
	}
	// A FIN is not unread data.
	client.Close()
	if err := readErr(t, server); err != io.EOF {
		t.Fatalf("server read after client close: %v", err)
	}
	if Unread(server) {
		t.Fatal("Unread = true for a connection holding only the peer's FIN")
	}
}

func TestUnreadWorksAfterReadDeadlinePassed(t *testing.T) {
	client, server := tcpPair(t)
	server.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !Unread(server) {
		if time.Now().After(deadline) {
			t.Fatal("Unread stayed false on a connection whose read deadline had passed")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUnreadFalseWhenItCannotTell(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Unread(a) {
		t.Error("Unread(net.Pipe) = true, want false (no file descriptor)")
	}
	_, server := tcpPair(t)
	server.Close()
	if Unread(server) {
		t.Error("Unread(closed conn) = true, want false")
	}
}
