package cairn

import "time"

// Clock reads the time. Code where time decides behaviour (the time a
// snapshot records, which a selector then picks by; what retention keeps;
// when a schedule fires; how long a clone waits) reads it through a Clock
// its caller may set, so that tests can fix it. The zero Clock is the
// machine's.
type Clock func() time.Time

// Now is the clock's time.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}
