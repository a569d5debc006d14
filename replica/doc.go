// Package replica is a broker's state for each partition it hosts: the
// partition's log, whether this broker leads it and in which leader epoch,
// the high watermark, the idempotent producers' sequence state, and the
// fetches parked until data arrives.
//
// It knows nothing about the network: the broker hands it validated batches
// and asks it for file regions. Until follower replication arrives a
// partition's ISR is its leader alone, so the high watermark is the log end
// offset after every append; the arithmetic lives in one place (advanceLocked)
// so that replication changes only that.
//
// Concurrency (DESIGN §5): a Partition's appendMu serialises appends with the
// producer-state check that decides them, so a duplicate is recognised
// atomically with the append it duplicates; mu guards the leadership fields
// and the parked waiters. The high watermark is an atomic, read without locks
// by every fetch. Locks are taken in the order appendMu, mu.
package replica
