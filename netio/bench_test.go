package netio

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFetchResponse measures serving a 1 MiB file region per request
// over loopback TCP with sendfile(2) (impl=sendfile), next to the same bytes
// read into memory and written from there (impl=copy), measured in the same
// run: the cost the zero-copy path saves. The copy reuses one buffer, so it
// pays the read(2) and the copy, not an allocation.
func BenchmarkFetchResponse(b *testing.B) {
	const size = 1 << 20
	path := filepath.Join(b.TempDir(), "segment.log")
	if err := os.WriteFile(path, make([]byte, 64<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, impl := range []string{"sendfile", "copy"} {
		b.Run("impl="+impl, func(b *testing.B) {
			var next int64
			buf := make([]byte, size) // one client, one request at a time: reusable
			h := HandlerFunc(func(req *Request, respond func(Response)) {
				off := next % (64<<20 - size)
				next += size
				hdr := binary.BigEndian.AppendUint32(nil, size)
				if impl == "sendfile" {
					respond(Response{Parts: []Part{{Bytes: hdr}, {File: f, Offset: off, Length: size}}})
					return
				}
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Error(err)
				}
				respond(Response{Parts: []Part{{Bytes: hdr}, {Bytes: buf}}})
			})
			s, err := NewServer(Config{}, h, Options{Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve(l)
			defer s.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := frame([]byte("fetch"))
			sink := make([]byte, size+4)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, sink); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
