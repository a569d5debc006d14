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
//
// # Producer-state snapshots
//
// A partition remembers each idempotent producer's epoch and last five
// batches (producer.go). So that a broker that restarts still recognises a
// retry, that state is written to the partition directory, as Kafka's
// ProducerStateManager writes <offset>.snapshot: when an append rolls a
// segment, and at Close if the state changed since the last one or its
// background fsync failed (so that a shutdown does not fsync a file per
// partition of plain producers). A
// snapshot named for offset O holds the state of every batch below O; on
// open the newest snapshot at or below the log end is loaded, but for its
// producers idle for producer.id.expiration.ms, and the batch headers from
// O on are replayed (a snapshot past the log end, left by a
// crash that lost an unflushed tail, and one that does not decode are
// removed; one below the log start is dropped, its state missing the
// batches removed after it, and the replay starts at the log start; a batch
// header the replay cannot read or make sense of fails the log, as a failed
// rebuild fails Kafka's log load). The file is replaced atomically (written
// to <name>.tmp and renamed). A roll's snapshot is written under the append lock, so a broker
// process that dies still finds it, and fsynced in the background, as
// Kafka's has been since KAFKA-15046, so that the append does not wait for
// two fsyncs (the file's and the directory's): 0.74x the mean append time
// with a roll every 64 appends (BenchmarkAppendRolling). Close's snapshot is
// fsynced before Close returns. The background syncs only the newest
// snapshot waiting, so one replaced while a sync runs is never synced. Once
// a snapshot is durable, the ones before it are removed but the newest
// durable one (synced, or found at open); until then none is, so a machine
// crash that tears the snapshots not yet synced (their CRC fails) still
// leaves the durable one before them. Integers are big-endian:
//
//	<20-digit O>.producers
//	    int16   version (1)
//	    uint32  CRC-32C of every byte after this field
//	    int64   O
//	    int32   producer count
//	    per producer, ascending by id:
//	        int64  producer id
//	        int16  epoch
//	        int64  last write, ms (for producer.id.expiration.ms)
//	        int8   batches n (1-5), oldest first:
//	            int32 first sequence   int32 last sequence
//	            int64 first offset     int64 last offset
//	            int64 LogAppendTime stamp, -1 for CreateTime
//
// Kafka's snapshot keeps a producer's last batch only; keeping all five lets
// a producer with five requests in flight across a restart have each retry
// answered as a duplicate.
package replica
