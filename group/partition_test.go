package group

import "testing"

// TestPartitionFor checks the group -> __consumer_offsets
// partition mapping against values of Java's String.hashCode, which
// Kafka's mapping is built on.
func TestPartitionFor(t *testing.T) {
	for _, tt := range []struct {
		group      string
		partitions int
		want       int32
	}{
		{"", 50, 0},                      // hashCode 0
		{"hello", 50, 22},                // hashCode 99162322
		{"hello", 7, 99162322 % 7},       //
		{"polygenelubricants", 50, 0},    // hashCode Integer.MIN_VALUE: Kafka's Utils.abs makes it 0
		{"a", 50, 97 % 50},               // hashCode 97
		{"Aa", 3, 2112 % 3},              // hashCode 2112, as "BB"
		{"BB", 3, 2112 % 3},              //
		{"\u00e9", 50, 233 % 50},         // one UTF-16 unit
		{"\U0001F600", 50, 1772899 % 50}, // a surrogate pair: 0xD83D*31 + 0xDE00
	} {
		if got := PartitionFor(tt.group, tt.partitions); got != tt.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", tt.group, tt.partitions, got, tt.want)
		}
	}
}

// TestAllocPartitionFor: every group request maps its group id; that
// costs no allocation.
func TestAllocPartitionFor(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { PartitionFor("group-\U0001F600-é", 50) }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}
