package main

import (
	"fmt"
	"slices"

	"helm.sh/helm/v3/pkg/releaseutil"
)

// setKindOrder makes this process's Helm create a release's objects in the
// order of Helm 3 (this library's) or of Helm 4. Helm 4 (helm/helm#30701)
// puts MutatingWebhookConfiguration and ValidatingWebhookConfiguration at
// the end of its known kinds, so custom resources such as a chart's
// IPAddressPools, which come after every known kind, are created after the
// webhook configuration; Helm 3 sorts the webhook configurations among
// the unknown kinds, by name, after the metallb.io kinds. A chart must
// install in both. Helm reads the order from a package variable, and this
// program installs one release per run.
func setKindOrder(name string) error {
	switch name {
	case "helm3":
	case "helm4":
		if !slices.Contains(releaseutil.InstallOrder, "ValidatingWebhookConfiguration") {
			releaseutil.InstallOrder = append(slices.Clone(releaseutil.InstallOrder),
				"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
			releaseutil.UninstallOrder = append([]string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"},
				releaseutil.UninstallOrder...)
		}
	default:
		return fmt.Errorf("-kind-order %q: want helm3 or helm4", name)
	}
	return nil
}
