package main

import "syscall"

// childAttr makes a child die with the benchmark, so that an interrupted
// run leaves no broker or instance behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
