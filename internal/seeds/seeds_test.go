package seeds

import "testing"

func TestParse(t *testing.T) {
	raw := []byte(`# from: x
# expect: reject for "bad-one": because
# expect: reject for "other"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: p
  namespace: metallb
spec:
  addresses: ["192.0.2.0/24"]
---
# a comment only document
---
apiVersion: v1
kind: Namespace
metadata:
  name: web
---
apiVersion: v1
kind: Service
metadata:
  name: s
  namespace: web
`)
	f, err := Parse("x.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		what      string
		got, want any
	}{
		{"docs", len(f.Docs), 3},
		{"first kind", f.Docs[0].Kind, "IPAddressPool"},
		{"first ns", f.Docs[0].Namespace, "metallb"},
		{"rejects", len(f.Rejects), 2},
		{"reject name", f.Rejects[0], "bad-one"},
		{"namespaces needed", len(f.Namespaces()), 1},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}
