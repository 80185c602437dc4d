{{/* Name of the release's objects. */}}
{{- define "keda-sqs-scaler.fullname" -}}
{{- .Release.Name | trunc 58 | trimSuffix "-" -}}
{{- end -}}

{{- define "keda-sqs-scaler.labels" -}}
app.kubernetes.io/name: keda-sqs-scaler
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: autoscaling
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.runtimeName }}
sd.runtime: {{ . }}
{{- end }}
{{- end -}}

{{/*
Checks JSON Schema cannot express; each fails the render with the values' paths.
*/}}
{{- define "keda-sqs-scaler.validate" -}}
{{- if gt (int .Values.minReplicaCount) (int .Values.maxReplicaCount) -}}
{{- fail (printf "minReplicaCount (%d) must be <= maxReplicaCount (%d)" (int .Values.minReplicaCount) (int .Values.maxReplicaCount)) -}}
{{- end -}}
{{- if and .Values.fallback.enabled (gt (int .Values.fallback.replicas) (int .Values.maxReplicaCount)) -}}
{{- fail (printf "fallback.replicas (%d) must be <= maxReplicaCount (%d)" (int .Values.fallback.replicas) (int .Values.maxReplicaCount)) -}}
{{- end -}}
{{- end -}}
