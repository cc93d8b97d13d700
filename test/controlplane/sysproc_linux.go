package controlplane

import "syscall"

// sysProcAttr puts each child in its own process group (so Stop can signal
// the whole group) and has the kernel SIGKILL it when the test process dies,
// even on a panic or SIGKILL, so no component outlives its test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
