// Command plaininformer is the baseline of the memory harness
// (test/bench/memory): a plain client-go SharedInformerFactory caching
// full Pod and Node objects, with no transform, as a controller would.
//
// The pod informer uses the same field selector as fitgate's
// (status.phase!=Succeeded,status.phase!=Failed,spec.nodeName!=, bound
// non-terminal pods) and the namespace index that the factory's standard
// pod informer has. Both informers have an event handler, which counts the
// objects.
//
// It serves /healthz and /readyz on --health-addr; /readyz answers 200 with
// {"pods":N,"nodes":M} once both informers have synced, 503 before.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// podFieldSelector is fitgate's (webhook.PodFieldSelector), repeated here
// so that this baseline does not link fitgate's code.
const podFieldSelector = "status.phase!=Succeeded,status.phase!=Failed,spec.nodeName!="

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "plaininformer: %v\n", err)
		os.Exit(1)
	}
}

type counter struct{ n atomic.Int64 }

func (c *counter) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.n.Add(1) },
		UpdateFunc: func(any, any) {},
		DeleteFunc: func(any) { c.n.Add(-1) },
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server (required)")
	healthAddr := flag.String("health-addr", "127.0.0.1:8081", "address of /healthz and /readyz")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if *kubeconfig == "" {
		return fmt.Errorf("--kubeconfig is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	cfg.UserAgent = "plaininformer"
	cfg.QPS, cfg.Burst = 50, 100 // as fitgate serve
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.InformerFor(&v1.Pod{}, func(cs kubernetes.Interface, resync time.Duration) toolscache.SharedIndexInformer {
		return coreinformers.NewFilteredPodInformer(cs, metav1.NamespaceAll, resync,
			toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc},
			func(o *metav1.ListOptions) { o.FieldSelector = podFieldSelector })
	})
	nodes := factory.Core().V1().Nodes().Informer()
	var podCount, nodeCount counter
	podReg, err := pods.AddEventHandler(podCount.handler())
	if err != nil {
		return err
	}
	nodeReg, err := nodes.AddEventHandler(nodeCount.handler())
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *healthAddr)
	if err != nil {
		return fmt.Errorf("--health-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !podReg.HasSynced() || !nodeReg.HasSynced() {
			http.Error(w, "informers not synced", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"pods": podCount.n.Load(), "nodes": nodeCount.n.Load()})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	factory.Start(ctx.Done())
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	factory.Shutdown()
	return nil
}
