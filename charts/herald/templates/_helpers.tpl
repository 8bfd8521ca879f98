{{/* Chart name, overridable. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of cluster-scoped names, so two releases do not collide. */}}
{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "herald.name" . -}}
{{- end -}}
{{- end -}}

{{- define "herald.labels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component; the MetalLB-era app/component labels
     keep commands such as `kubectl logs -l component=speaker` working. */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app: metallb
component: {{ .component }}
{{- end -}}

{{/* Images are tagged with the release's git tag, v<appVersion>, which is
     what `make image` names them (VERSION, from git describe). */}}
{{- define "herald.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf "v%s" (trimPrefix "v" .Chart.AppVersion)) }}
{{- end -}}

{{- define "herald.controllerServiceAccount" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default "controller" .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "herald.speakerServiceAccount" -}}
{{- if .Values.speaker.serviceAccount.create -}}
{{- default "speaker" .Values.speaker.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.speaker.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The webhook is rendered unless the controller runs without it. */}}
{{- define "herald.webhookEnabled" -}}
{{- if and .Values.controller.enabled (ne (include "herald.webhookMode" .) "off") -}}true{{- end -}}
{{- end -}}

{{/* --webhook value; MetalLB's enabled/disabled are accepted too. */}}
{{- define "herald.webhookMode" -}}
{{- $m := .Values.controller.webhookMode | toString -}}
{{- if eq $m "enabled" -}}on{{- else if eq $m "disabled" -}}off{{- else if has $m (list "auto" "on" "off") -}}{{ $m }}{{- else -}}
{{- fail (printf "controller.webhookMode %q: want auto, on or off" $m) -}}
{{- end -}}
{{- end -}}
