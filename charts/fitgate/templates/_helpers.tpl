{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "fitgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: the release name if it already contains the chart
name, so `helm install fitgate` gives "fitgate" and not "fitgate-fitgate".
It names the Service, hence the certificate's <service>.<namespace>.svc, and
the cluster-scoped webhook configuration and ClusterRoles.
*/}}
{{- define "fitgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fitgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fitgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fitgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fitgate.labels" -}}
helm.sh/chart: {{ include "fitgate.chart" . }}
{{ include "fitgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "fitgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fitgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the serving certificate, in either mode. */}}
{{- define "fitgate.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "fitgate.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/* The ValidatingWebhookConfiguration, cluster-scoped. */}}
{{- define "fitgate.webhookConfigName" -}}
{{- include "fitgate.fullname" . }}
{{- end }}

{{/*
Exempt namespaces: the configured ones plus the release namespace, without
duplicates, in that order (the order fitgate's own default uses).
*/}}
{{- define "fitgate.exemptNamespaces" -}}
{{- $out := list }}
{{- range (append .Values.exemptNamespaces .Release.Namespace) }}
{{- if not (has . $out) }}{{ $out = append $out . }}{{ end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "fitgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the serving pair is read from (an emptyDir or the Secret). */}}
{{- define "fitgate.certDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end }}
