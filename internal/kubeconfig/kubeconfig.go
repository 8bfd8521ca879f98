// Package kubeconfig writes a kubeconfig file for a rest.Config, so that
// kubectl and herald subprocesses reach the same API server as the process
// that started it (the test control plane, the lab, the benchmarks).
package kubeconfig

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Write saves cfg's server, credentials and impersonated user as the
// current context of a kubeconfig file at path.
func Write(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["herald"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos["herald"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
		Impersonate:           cfg.Impersonate.UserName,
	}
	kc.Contexts["herald"] = &clientcmdapi.Context{Cluster: "herald", AuthInfo: "herald"}
	kc.CurrentContext = "herald"
	return clientcmd.WriteToFile(*kc, path)
}
