// Package controlplane runs a real, local Kubernetes control plane (etcd,
// kube-apiserver, kube-scheduler and kube-controller-manager) as child
// processes for end-to-end tests and for `make run`.
//
// Everything listens on 127.0.0.1 on free ports and lives in one directory
// (PKI, etcd data, kubeconfigs and one log file per component). There is no
// kubelet: Nodes are fake objects created by [ControlPlane.CreateNode], which
// the real scheduler binds pods to. The node-lifecycle controller is disabled
// so those kubelet-less Nodes are never tainted unreachable.
//
// The binaries are taken from a bin directory ([Options.BinDir], else
// $FITGATE_BIN_DIR, else the repository root's bin/); build them with
// `make tools`. A missing binary is an error, never a skip.
//
// Typical use in a test package:
//
//	var cp *controlplane.ControlPlane
//
//	func TestMain(m *testing.M) { os.Exit(run(m)) }
//
//	func run(m *testing.M) int {
//		var err error
//		cp, err = controlplane.Start(context.Background(), controlplane.Options{})
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			return 1
//		}
//		defer cp.Stop()
//		return m.Run()
//	}
//
// Every child runs in its own process group with Pdeathsig=SIGKILL, so the
// components die with the test binary even when it panics or is killed.
package controlplane
