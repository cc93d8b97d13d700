package main

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/fitgate/fitgate/certs"
)

// TestServeCertSecret covers the flags the chart passes for self-managed
// certificates.
func TestServeCertSecret(t *testing.T) {
	cfg, err := loadServeConfig([]string{"--namespace=gate", "--cert-secret=fitgate-tls", "--service-name=fg",
		"--webhook-config-name=fg-hook", "--cert-dir=/certs", "--cert-extra-sans=127.0.0.1,fitgate.example.com",
		"--cert-validity=40s", "--cert-rotate-before=20s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := cfg.rotator(&rest.Config{Host: "https://127.0.0.1:1"}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if rot.Namespace != "gate" || rot.SecretName != "fitgate-tls" || rot.ServiceName != "fg" || rot.WebhookConfigName != "fg-hook" ||
		rot.CertDir != "/certs" || rot.Validity != 40*time.Second || rot.CAValidity != 5*365*24*time.Hour ||
		rot.RotateBefore.Before != 20*time.Second || rot.CheckInterval != 5*time.Second {
		t.Errorf("rotator = %+v", rot)
	}
	if !slices.Equal(rot.ExtraDNSNames, []string{"fitgate.example.com"}) || len(rot.IPs) != 1 || !rot.IPs[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("SANs = %v %v", rot.ExtraDNSNames, rot.IPs)
	}

	// Without --cert-secret there is no rotator, and the defaults check
	// every 5 minutes.
	cfg, _ = loadServeConfig(nil, io.Discard)
	if rot, err := cfg.rotator(&rest.Config{}, logr.Discard()); rot != nil || err != nil {
		t.Errorf("no --cert-secret: %v, %v", rot, err)
	}
	if got := checkInterval(365*24*time.Hour, certs.RotationPolicy{}); got != 5*time.Minute {
		t.Errorf("default check interval = %v", got)
	}
}

func TestServeCertSecretErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--register-url=https://127.0.0.1:9443/validate"}, "exclusive"},
		{[]string{"--ca-file=/ca.crt"}, "exclusive"},
		{[]string{"--cert-validity=soon"}, "--cert-validity"},
		{[]string{"--ca-validity=-1h"}, "--ca-validity"},
		{[]string{"--service-name="}, "--service-name"},
		{[]string{"--cert-validity=1h", "--cert-rotate-before=1h"}, "not shorter than validity"},
		{[]string{"--cert-validity=2h", "--ca-validity=1h", "--cert-rotate-before=90m"}, "rotated again"},
	} {
		cfg, err := loadServeConfig(append([]string{"--cert-secret=fitgate-tls"}, tc.args...), io.Discard)
		if err == nil {
			_, err = cfg.webhookConfig(logr.Discard())
		}
		if err == nil {
			_, err = cfg.rotator(&rest.Config{Host: "https://127.0.0.1:1"}, logr.Discard())
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
