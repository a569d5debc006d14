package client

import (
	"bytes"
	"runtime"
	"strconv"
)

// goid returns the running goroutine's id, read from the first line of its
// stack trace ("goroutine 18 [running]:"), or 0 if that line cannot be read
// (no goroutine has id 0).
//
// Go hides goroutine identity on purpose, and nothing else in Gregor uses
// it. The producer needs it for one question only, asked once per Close or
// Flush: is the caller the producer's own callback goroutine? Java's
// KafkaProducer asks the same (Thread.currentThread() == ioThread) for the
// same reason: waiting there for the callbacks to run would wait on itself.
// The question cannot be asked any other way; a flag set while a callback
// runs cannot tell that callback from another goroutine calling Close
// meanwhile.
func goid() uint64 {
	var buf [64]byte
	line := buf[:runtime.Stack(buf[:], false)]
	line, ok := bytes.CutPrefix(line, []byte("goroutine "))
	if !ok {
		return 0
	}
	id, _, _ := bytes.Cut(line, []byte(" "))
	n, err := strconv.ParseUint(string(id), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
