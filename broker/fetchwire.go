package broker

import (
	"encoding/binary"
	"math"

	"github.com/twmb/franz-go/pkg/kbin"

	"gregor/netio"
	"gregor/segment"
)

// The Fetch response is the one response Gregor encodes by hand (DESIGN §2):
// its record bytes stay in segment files and go to the socket with sendfile(2),
// so the response cannot be a single []byte as kmsg's AppendTo produces. The
// layout below follows kmsg's generated FetchResponse (v4 to v13) field for
// field; the tests check it byte for byte against kmsg's own encoding.

// fetchResponse is a Fetch response whose records are file regions. Fields a
// version does not carry are not encoded, as with kmsg.
type fetchResponse struct {
	ThrottleMillis int32
	ErrorCode      int16 // v7+
	SessionID      int32 // v7+
	Topics         []fetchTopic
}

// fetchTopic is one topic of a fetchResponse. Fetch v13 (KIP-516) names
// topics by ID only, older versions by name only.
type fetchTopic struct {
	Name       string   // v0-12
	ID         [16]byte // v13+
	Partitions []fetchPartition
}

// fetchPartition is one partition of a fetchTopic.
type fetchPartition struct {
	Partition            int32
	ErrorCode            int16
	HighWatermark        int64
	LastStableOffset     int64          // v4+
	LogStartOffset       int64          // v5+
	DivergingEpoch       *fetchEpochEnd // v12+, tagged field 0; nil = absent
	CurrentLeader        *fetchLeader   // v12+, tagged field 1; nil = absent
	AbortedTransactions  []fetchAborted // v4+; nil encodes as a null array (Kafka sends null when none)
	PreferredReadReplica int32          // v11+, -1 when none
	// Records are the record bytes, in order; nil or empty is an empty
	// records field (length 0, not null), which is what Kafka sends for a
	// partition with nothing to return.
	Records []segment.Region
}

// fetchEpochEnd is the DivergingEpoch tagged field (KIP-320): where the
// follower's log diverges from the leader's, so that it truncates there.
type fetchEpochEnd struct {
	Epoch     int32
	EndOffset int64
}

// fetchLeader is the CurrentLeader tagged field (KIP-951): the leader a
// client should go to after NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH.
type fetchLeader struct{ LeaderID, LeaderEpoch int32 }

// fetchAborted is one entry of AbortedTransactions: a read_committed consumer
// drops the records of ProducerID from FirstOffset up to its abort marker.
type fetchAborted struct{ ProducerID, FirstOffset int64 }

// Sizes of the tagged fields' bodies in flexible versions: the fields, then
// the field's own (empty) tag buffer.
const (
	fetchEpochEndTagSize = 4 + 8 + 1
	fetchLeaderTagSize   = 4 + 4 + 1
)

// appendFetchResponse encodes r as a complete response frame for the given
// Fetch version (4 to 13): the 4-byte size prefix, the response header
// (correlation id; flexible versions v12+ add the empty header tag buffer),
// then the body. Byte pieces are appended to parts as Part{Bytes: ...}
// slices of a single buffer (buf is reused scratch: encode into buf[:0] and
// return it grown, so a caller can pool it), record regions as
// Part{File: region.File.OS(), Offset: region.Position, Length: region.Length}.
// The whole response is sized before anything is sent: the size prefix is exact.
//
// The bytes between two regions are contiguous in buf, so there is at most one
// Bytes part between file parts, and a writev carries as few iovecs as the
// layout allows; regions of one file that touch are sent as one part, and
// empty regions are dropped. Parts already in parts are kept. Nothing is
// allocated beyond growing buf and parts, so a pooled buf and parts make an
// encode allocation-free.
//
// It panics for a version outside 4 to 13, which the broker's ApiVersions
// never offers, and if a record length or the frame exceeds Kafka's int32 sizes:
// fetch.max.bytes and max.partition.fetch.bytes are int32, so only a caller
// that ignored them gets there, and a wrong size prefix would desynchronise
// the connection rather than fail one request.
func appendFetchResponse(buf []byte, parts []netio.Part, version int16, correlationID int32, r *fetchResponse) ([]byte, []netio.Part) {
	if version < 4 || version > 13 {
		panic("broker: appendFetchResponse supports Fetch v4 to v13")
	}
	flexible := version >= 12
	first := len(parts)
	// mark is where the bytes not yet handed to a part begin. While buf may
	// still grow, a byte part holds its range of buf in Offset and Length,
	// which cannot dangle; the last loop turns them into slices of the final
	// buf.
	mark := 0
	var recordBytes int64

	buf = append(buf[:0], 0, 0, 0, 0) // the size prefix, set at the end
	buf = kbin.AppendInt32(buf, correlationID)
	if flexible {
		buf = append(buf, 0) // the response header's tag buffer
	}
	buf = kbin.AppendInt32(buf, r.ThrottleMillis)
	if version >= 7 {
		buf = kbin.AppendInt16(buf, r.ErrorCode)
		buf = kbin.AppendInt32(buf, r.SessionID)
	}
	buf = appendArrayLen(buf, flexible, len(r.Topics))
	for ti := range r.Topics {
		t := &r.Topics[ti]
		if version >= 13 {
			buf = kbin.AppendUuid(buf, t.ID)
		} else if flexible {
			buf = kbin.AppendCompactString(buf, t.Name)
		} else {
			buf = kbin.AppendString(buf, t.Name)
		}
		buf = appendArrayLen(buf, flexible, len(t.Partitions))
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			buf = kbin.AppendInt32(buf, p.Partition)
			buf = kbin.AppendInt16(buf, p.ErrorCode)
			buf = kbin.AppendInt64(buf, p.HighWatermark)
			buf = kbin.AppendInt64(buf, p.LastStableOffset) // v4+: always here
			if version >= 5 {
				buf = kbin.AppendInt64(buf, p.LogStartOffset)
			}
			buf = appendAborted(buf, flexible, p.AbortedTransactions)
			if version >= 11 {
				buf = kbin.AppendInt32(buf, p.PreferredReadReplica)
			}

			n := regionsLength(p.Records)
			if n > math.MaxInt32-1 { // compact lengths are stored plus one
				panic("broker: fetch records of one partition exceed 2 GiB")
			}
			if flexible {
				buf = kbin.AppendUvarint(buf, uint32(n)+1) // compact nullable bytes, never null
			} else {
				buf = kbin.AppendInt32(buf, int32(n))
			}
			if n > 0 {
				recordBytes += n
				if mark < len(buf) {
					parts = append(parts, netio.Part{Offset: int64(mark), Length: int64(len(buf) - mark)})
					mark = len(buf)
				}
				parts = appendRegions(parts, first, p.Records)
			}

			if flexible {
				buf = appendPartitionTags(buf, p)
			}
		}
		if flexible {
			buf = append(buf, 0) // the topic's tag buffer
		}
	}
	if flexible {
		buf = append(buf, 0) // the response's tag buffer
	}
	if mark < len(buf) {
		parts = append(parts, netio.Part{Offset: int64(mark), Length: int64(len(buf) - mark)})
	}

	size := int64(len(buf)) - 4 + recordBytes
	if size > math.MaxInt32 {
		panic("broker: fetch response exceeds 2 GiB")
	}
	binary.BigEndian.PutUint32(buf, uint32(size))
	for i := first; i < len(parts); i++ {
		if pt := &parts[i]; pt.File == nil {
			// Capped, so that whoever appends to a part cannot write over
			// the next one.
			pt.Bytes = buf[pt.Offset : pt.Offset+pt.Length : pt.Offset+pt.Length]
			pt.Offset, pt.Length = 0, 0
		}
	}
	return buf, parts
}

// appendArrayLen appends a non-nullable array length: int32, or in flexible
// versions a uvarint of the length plus one.
func appendArrayLen(buf []byte, flexible bool, n int) []byte {
	if flexible {
		return kbin.AppendCompactArrayLen(buf, n)
	}
	return kbin.AppendArrayLen(buf, n)
}

// appendAborted appends AbortedTransactions, null when nil: Kafka answers
// null when there are none, and read_committed clients treat null and empty
// alike.
func appendAborted(buf []byte, flexible bool, aborted []fetchAborted) []byte {
	if flexible {
		buf = kbin.AppendCompactNullableArrayLen(buf, len(aborted), aborted == nil)
	} else {
		buf = kbin.AppendNullableArrayLen(buf, len(aborted), aborted == nil)
	}
	for _, a := range aborted {
		buf = kbin.AppendInt64(buf, a.ProducerID)
		buf = kbin.AppendInt64(buf, a.FirstOffset)
		if flexible {
			buf = append(buf, 0) // the entry's tag buffer
		}
	}
	return buf
}

// appendPartitionTags appends a partition's tag buffer in flexible versions:
// the number of tags present, then each as uvarint tag, uvarint size, body, in
// tag order, as KIP-482 requires. Each body is a struct and so ends with its
// own empty tag buffer.
func appendPartitionTags(buf []byte, p *fetchPartition) []byte {
	var count uint32
	if p.DivergingEpoch != nil {
		count++
	}
	if p.CurrentLeader != nil {
		count++
	}
	buf = kbin.AppendUvarint(buf, count)
	if e := p.DivergingEpoch; e != nil {
		buf = kbin.AppendUvarint(buf, 0)
		buf = kbin.AppendUvarint(buf, fetchEpochEndTagSize)
		buf = kbin.AppendInt32(buf, e.Epoch)
		buf = kbin.AppendInt64(buf, e.EndOffset)
		buf = append(buf, 0)
	}
	if l := p.CurrentLeader; l != nil {
		buf = kbin.AppendUvarint(buf, 1)
		buf = kbin.AppendUvarint(buf, fetchLeaderTagSize)
		buf = kbin.AppendInt32(buf, l.LeaderID)
		buf = kbin.AppendInt32(buf, l.LeaderEpoch)
		buf = append(buf, 0)
	}
	return buf
}

// regionsLength is the records field's length: the sum of the regions'.
func regionsLength(rs []segment.Region) int64 {
	var n int64
	for _, r := range rs {
		if r.Length < 0 {
			panic("broker: fetch record region with a negative length")
		}
		n += r.Length
	}
	return n
}

// appendRegions appends the file parts of rs. A region that continues the
// previous part's file where it ends extends that part, so that sendfile(2)
// runs once for it; parts before first belong to the caller and are left
// alone. Empty regions add nothing.
func appendRegions(parts []netio.Part, first int, rs []segment.Region) []netio.Part {
	for _, r := range rs {
		if r.Length == 0 {
			continue
		}
		f := r.File.OS()
		if k := len(parts) - 1; k >= first {
			if last := &parts[k]; last.File == f && last.Offset+last.Length == r.Position {
				last.Length += r.Length
				continue
			}
		}
		parts = append(parts, netio.Part{File: f, Offset: r.Position, Length: r.Length})
	}
	return parts
}
