package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// peer is a program the harness measures.
type peer struct {
	name string
	bin  string
	// prepare returns the program's arguments to run against kubeconfig,
	// with its files in dir, and the URL that answers 200 once it has
	// synced.
	prepare func(dir, kubeconfig string) (args []string, readyURL string, err error)
	// counts returns the pods and nodes it says it caches, from the body
	// of its ready answer or its metrics; ok false if it does not say.
	counts func(readyBody string) (pods, nodes int, ok bool, err error)
}

func fitgatePeer(bin string) *peer {
	var metricsURL string
	return &peer{
		name: "fitgate serve",
		bin:  bin,
		prepare: func(dir, kubeconfig string) ([]string, string, error) {
			certDir := filepath.Join(dir, "certs")
			if err := writeServingCert(certDir); err != nil {
				return nil, "", err
			}
			var ports [3]int
			for i := range ports {
				p, err := freePort()
				if err != nil {
					return nil, "", err
				}
				ports[i] = p
			}
			metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2])
			// No --register-url: fitgate does not register itself; no
			// --cert-secret: it reads the certificate from --cert-dir.
			args := []string{"serve", "--kubeconfig", kubeconfig,
				"--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--cert-dir", certDir,
				"--health-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
				"--metrics-addr", "127.0.0.1:" + strconv.Itoa(ports[2]),
				"--namespace", "fitgate-bench", "--log-level", "info"}
			return args, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]), nil
		},
		counts: func(string) (int, int, bool, error) {
			return scrapeCacheCounts(metricsURL)
		},
	}
}

func plainPeer(bin string) *peer {
	return &peer{
		name: "plain informer",
		bin:  bin,
		prepare: func(dir, kubeconfig string) ([]string, string, error) {
			port, err := freePort()
			if err != nil {
				return nil, "", err
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			return []string{"-kubeconfig", kubeconfig, "-health-addr", addr}, "http://" + addr + "/readyz", nil
		},
		counts: func(body string) (int, int, bool, error) {
			var c struct{ Pods, Nodes int }
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				return 0, 0, false, fmt.Errorf("plain informer's /readyz %q: %w", body, err)
			}
			return c.Pods, c.Nodes, true, nil
		},
	}
}

// scrapeCacheCounts reads fitgate_cache_objects{kind="Pod"} and
// {kind="Node"} from fitgate's /metrics; ok is false if it has no such
// metric.
func scrapeCacheCounts(url string) (pods, nodes int, ok bool, err error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, false, fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, 0, false, err
	}
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		var dst *int
		switch {
		case strings.HasPrefix(line, `fitgate_cache_objects{kind="Pod"} `):
			dst = &pods
		case strings.HasPrefix(line, `fitgate_cache_objects{kind="Node"} `):
			dst = &nodes
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, 0, false, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		*dst = int(v)
		found++
	}
	return pods, nodes, found == 2, nil
}

// writeServingCert writes a self-signed serving certificate for 127.0.0.1
// as tls.crt and tls.key in dir. Nothing calls the webhook; fitgate only
// needs one to become ready.
func writeServingCert(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "fitgate-bench"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}
