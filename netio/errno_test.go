package netio

import "syscall"

// syscall_ECONNRESET is what a read sees when the server closes a socket that
// still had unread bytes from the client.
var syscall_ECONNRESET = syscall.ECONNRESET
