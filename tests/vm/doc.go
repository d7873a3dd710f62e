// Package vm holds the real-Linux-client tests: they boot Debian's kernel
// under QEMU (TCG), mount a 9P server running on the host with the kernel's
// own v9fs client, run a shell workload in the guest, and check the results
// from the guest and from the host. See README.md in this directory.
//
// The package has no non-test code; the guest side is guest/*.sh (the
// workload, the session-reset script and their helpers), the static helper
// vmtool/, and rump9p itself, built static, for "rump9p guest-mount".
package vm
