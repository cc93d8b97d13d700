package main

import "testing"

func TestReviewUID(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		ok               bool
	}{
		{"api server's order", `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"kind":"Pod"}}}`, "705ab4f5-6393-11e8-b7cc-42010a800002", true},
		{"no request", `{"kind":"AdmissionReview"}`, "", false},
		{"uid not first", `{"request":{"kind":{"kind":"Pod"},"uid":"x"}}`, "", false},
		{"empty uid", `{"request":{"uid":""}}`, "", false},
		{"escaped uid", `{"request":{"uid":"a\"b"}}`, "", false},
		{"unterminated", `{"request":{"uid":"abc`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := reviewUID([]byte(tc.body))
			if ok != tc.ok || string(got) != tc.want {
				t.Errorf("reviewUID = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
