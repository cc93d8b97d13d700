package certs

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keys of the Secret besides corev1.TLSCertKey and corev1.TLSPrivateKeyKey.
const (
	// SecretCACertKey holds the CA bundle, the same bytes as the caBundle
	// published in the webhook configuration.
	SecretCACertKey = "ca.crt"
	// SecretCAKeyKey holds the signing CA's private key. It is what lets any
	// replica renew; it never leaves the Secret (it is not written to disk).
	SecretCAKeyKey = "ca.key"
	// SecretNextCAKeyKey holds the private key of the staged next CA while
	// there is one: its certificate is already in ca.crt, so clients learn
	// to trust it, but it signs nothing until it is promoted to ca.key.
	// Like ca.key it never leaves the Secret.
	SecretNextCAKeyKey = "ca-next.key"
)

// MaterialFromSecret reads the material's keys of s; missing keys are empty.
func MaterialFromSecret(s *corev1.Secret) Material {
	if s == nil {
		return Material{}
	}
	return Material{
		CABundle:  s.Data[SecretCACertKey],
		CAKey:     s.Data[SecretCAKeyKey],
		NextCAKey: s.Data[SecretNextCAKeyKey],
		Cert:      s.Data[corev1.TLSCertKey],
		Key:       s.Data[corev1.TLSPrivateKeyKey],
	}
}

// ApplyToSecret sets the material's keys of s, leaving any other keys
// alone. ca-next.key is removed rather than left empty when no CA is staged,
// so that a Secret outside a CA rotation has the four keys it always had.
func (m Material) ApplyToSecret(s *corev1.Secret) {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[SecretCACertKey] = m.CABundle
	s.Data[SecretCAKeyKey] = m.CAKey
	if len(m.NextCAKey) > 0 {
		s.Data[SecretNextCAKeyKey] = m.NextCAKey
	} else {
		delete(s.Data, SecretNextCAKeyKey)
	}
	s.Data[corev1.TLSCertKey] = m.Cert
	s.Data[corev1.TLSPrivateKeyKey] = m.Key
}

// newSecret is the Secret a rotator creates when there is none. An existing
// Secret keeps its type (types are immutable) and is only updated.
func newSecret(namespace, name string, m Material) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      name,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "fitgate-cert-rotator"},
		},
		Type: corev1.SecretTypeTLS,
	}
	m.ApplyToSecret(s)
	return s
}
