package repo

import "math/bits"

// Dumps are cut into chunks by content (FastCDC: a gear hash with
// normalized chunking) before they reach kopia, so that an unchanged
// stretch of a dump gives the same chunks whatever changed before it, and
// kopia hashes and compresses the chunks in parallel. The table and the
// sizes must never change: chunks cut differently do not deduplicate
// against the ones already stored.
const (
	cdcMin = 256 << 10
	cdcAvg = 1 << 20
	cdcMax = 4 << 20
)

var (
	// Before the average size a cut needs more zero bits, after it fewer:
	// chunk sizes gather around the average.
	cdcMaskHard = mask(bits.TrailingZeros(cdcAvg) + 2)
	cdcMaskEasy = mask(bits.TrailingZeros(cdcAvg) - 2)
	gear        = gearTable()
)

// mask selects the n highest bits, the best mixed ones of a gear hash.
func mask(n int) uint64 { return ^uint64(0) << (64 - n) }

// gearTable derives 256 pseudo-random words from a fixed seed (splitmix64).
func gearTable() (t [256]uint64) {
	x := uint64(0x63616972_6e636463) // "cairncdc"
	for i := range t {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		t[i] = z ^ (z >> 31)
	}
	return t
}

// cdc finds chunk boundaries in a growing buffer.
type cdc struct {
	pos int    // next byte of the chunk to hash
	h   uint64 // gear hash up to pos
}

// cut scans chunk (the bytes since the last cut, possibly more than
// before) and returns the length of the chunk to cut, or 0 when more bytes
// are needed to decide.
func (c *cdc) cut(chunk []byte) int {
	if c.pos < cdcMin {
		c.pos = cdcMin
	}
	n := min(len(chunk), cdcMax)
	h, i := c.h, c.pos
	for ; i < n && i < cdcAvg; i++ {
		h = h<<1 + gear[chunk[i]]
		if h&cdcMaskHard == 0 {
			c.reset()
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gear[chunk[i]]
		if h&cdcMaskEasy == 0 {
			c.reset()
			return i + 1
		}
	}
	if n == cdcMax {
		c.reset()
		return cdcMax
	}
	c.h, c.pos = h, i
	return 0
}

func (c *cdc) reset() { c.h, c.pos = 0, 0 }
