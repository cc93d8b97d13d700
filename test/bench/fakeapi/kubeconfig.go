package fakeapi

import (
	"fmt"
	"net/url"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig returns a kubeconfig for the server at serverURL (as returned
// by Start or Server.URL), with no credentials: the fake needs none.
func Kubeconfig(serverURL string) (*clientcmdapi.Config, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fakeapi: server URL %q: want http://host:port", serverURL)
	}
	const name = "fakeapi"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: serverURL}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = name
	return cfg, nil
}

// WriteKubeconfig writes Kubeconfig(serverURL) to path (mode 0600).
func WriteKubeconfig(path, serverURL string) error {
	cfg, err := Kubeconfig(serverURL)
	if err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("fakeapi: writing kubeconfig: %w", err)
	}
	return nil
}

// WriteKubeconfig writes a kubeconfig for this server to path.
func (s *Server) WriteKubeconfig(path string) error { return WriteKubeconfig(path, s.url) }
