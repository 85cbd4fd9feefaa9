package scim

import (
	"time"

	"golang.org/x/sys/unix"
)

// cpuTime is the CPU time the process has used: unlike the wall clock, it
// does not grow while other processes have the machine.
func cpuTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ts.Nano())
}
