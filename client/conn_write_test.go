package client

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The Produce request written from its pieces is byte for byte what kmsg's
// formatter writes, for every version the writer takes: null and empty
// record sets, several topics, a transactional id or none.
func TestAppendProduceRequestMatchesKmsg(t *testing.T) {
	batch1, _ := testProduceRequest(t, 1, 4<<10)
	b := batch1.Topics[0].Partitions[0].Records
	txn := "txn-1"
	for v := int16(3); v <= 12; v++ {
		for _, withTxn := range []bool{false, true} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks, req.TimeoutMillis = 1, 1234
			if withTxn {
				req.TransactionID = &txn
			}
			for ti, name := range []string{"a", "topic-two"} {
				tp := kmsg.NewProduceRequestTopic()
				tp.Topic = name
				for p, recs := range [][]byte{b, nil, {}, b[:len(b):len(b)]} {
					rp := kmsg.NewProduceRequestTopicPartition()
					rp.Partition = int32(p + 10*ti)
					rp.Records = recs
					tp.Partitions = append(tp.Partitions, rp)
				}
				req.Topics = append(req.Topics, tp)
			}
			if !produceWritable(req) {
				t.Fatalf("v%d: not writable", v)
			}
			want := kmsg.NewRequestFormatter(kmsg.FormatterClientID("cid")).AppendRequest(nil, req, 77)
			_, vec := appendProduceRequest(nil, nil, "cid", req, 77)
			var got []byte
			for _, p := range vec {
				got = append(got, p...)
			}
			if string(got) != string(want) {
				t.Fatalf("v%d txn=%v: %d bytes differ from kmsg's %d", v, withTxn, len(got), len(want))
			}
			// The batches are not copied: they are pieces of their own.
			n := 0
			for _, p := range vec {
				if len(p) == len(b) && &p[0] == &b[0] {
					n++
				}
			}
			if n != 4 {
				t.Errorf("v%d: %d pieces are the batch itself, want 4", v, n)
			}
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(13)
	if produceWritable(req) {
		t.Error("v13 (topic ids) taken")
	}
}

// blockingConn's Write waits for release, so a test can act while a write
// is in progress.
type blockingConn struct {
	sinkConn
	entered, release chan struct{}
}

func (b *blockingConn) Write(p []byte) (int, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return b.sinkConn.Write(p)
}

// A connection killed while a request is being written leaves that call to
// the writer, which completes it, once, when the write returns: the
// request's batches must not go back to the producer while a write may
// still read them.
func TestKillDuringWriteCompletesCallAfterWrite(t *testing.T) {
	c, nc, done, wrote := startBlockedWrite(t, 2)
	c.kill(errors.New("boom"))
	select {
	case err := <-done:
		t.Fatalf("call completed during its write: %v", err)
	default:
	}
	close(nc.release)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	var ce *ConnError
	if err := <-done; !errors.As(err, &ce) {
		t.Fatalf("call completed with %v, want a ConnError", err)
	}
	notCompletedAgain(t, done)
}

// A call whose answer came before the connection died, while the writer was
// still returning from its write, is not completed again.
func TestKillAfterAnswerDuringWrite(t *testing.T) {
	c, nc, done, wrote := startBlockedWrite(t, 1)
	// The reader takes the answer: the call leaves pending.
	c.mu.Lock()
	got := c.mu.pending[0]
	c.mu.pending = c.mu.pending[1:]
	c.mu.Unlock()
	got.onDone(nil, nil)
	c.kill(errors.New("boom"))
	close(nc.release)
	<-wrote
	if err := <-done; err != nil {
		t.Fatalf("answer: %v", err)
	}
	notCompletedAgain(t, done)
}

// startBlockedWrite starts writing a call of a Produce request with the
// given number of partitions into a blockingConn and returns once the write
// is inside Write. done receives the call's completions, wrote the write's
// result.
func startBlockedWrite(t *testing.T, partitions int) (c *conn, nc *blockingConn, done, wrote chan error) {
	t.Helper()
	c = newWriteTestConn()
	req, _ := testProduceRequest(t, partitions, 4<<10)
	done = make(chan error, 2)
	cl := &call{req: req, maxVersion: -1, onDone: func(_ kmsg.Response, err error) { done <- err }}
	nc = &blockingConn{entered: make(chan struct{}, 1), release: make(chan struct{})}
	wrote = make(chan error, 1)
	go func() { wrote <- c.write(nc, cl) }()
	<-nc.entered
	return c, nc, done, wrote
}

// notCompletedAgain fails if a second completion of the call is waiting.
func notCompletedAgain(t *testing.T, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("call completed twice (again with %v)", err)
	default:
	}
}
