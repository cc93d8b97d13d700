//go:build unix && !linux

package controlplane

import "syscall"

// sysProcAttr: Pdeathsig is Linux-only; elsewhere children are reaped by Stop
// only, so a crashed test binary may leave them behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
