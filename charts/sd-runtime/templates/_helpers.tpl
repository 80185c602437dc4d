{{/* Name of the release's namespaced objects. */}}
{{- define "sd-runtime.fullname" -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{/* Cluster-wide unique name of the model PersistentVolume (and its CSI volumeHandle). */}}
{{- define "sd-runtime.modelVolumeName" -}}
{{- printf "%s-%s-models" .Release.Namespace (include "sd-runtime.fullname" .) | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{- define "sd-runtime.selectorLabels" -}}
app.kubernetes.io/name: sd-runtime
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sd-runtime.labels" -}}
{{ include "sd-runtime.selectorLabels" . }}
app.kubernetes.io/component: inference
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
sd.runtime: {{ .Values.runtime.name }}
sd.runtime-type: {{ .Values.runtime.type }}
{{- end -}}

{{/* Default runtime images: the ones the reference guidance publishes. */}}
{{- define "sd-runtime.runtimeImage" -}}
{{- $image := .Values.runtime.image | default dict -}}
{{- $repository := $image.repository | default (printf "public.ecr.aws/bingjiao/sd-on-eks/%s" .Values.runtime.type) -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository ($image.tag | default "latest") -}}
{{- end -}}
{{- end -}}

{{- define "sd-runtime.agentImage" -}}
{{- $image := .Values.agent.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository $image.tag -}}
{{- end -}}
{{- end -}}

{{/* Node labels the pods require (YAML map): nodePool.nodeSelector, else sd.pool=<name>. */}}
{{- define "sd-runtime.poolSelector" -}}
{{- toYaml (.Values.nodePool.nodeSelector | default (dict "sd.pool" .Values.nodePool.name)) -}}
{{- end -}}

{{/* The runtime's health endpoint (probes). */}}
{{- define "sd-runtime.healthPath" -}}
{{- if eq .Values.runtime.type "comfyui" -}}
/system_stats
{{- else -}}
/sdapi/v1/memory
{{- end -}}
{{- end -}}

{{/* Seconds the preStop hook waits for the agent to become idle. */}}
{{- define "sd-runtime.preStopSeconds" -}}
{{- sub (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownMarginSeconds) -}}
{{- end -}}

{{/*
Checks JSON Schema cannot express; each fails the render with the values' paths.
*/}}
{{- define "sd-runtime.validate" -}}
{{- $grace := int .Values.terminationGracePeriodSeconds -}}
{{- $needed := add (int .Values.maxTaskSeconds) (int .Values.shutdownMarginSeconds) -}}
{{- if lt $grace (int $needed) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be >= maxTaskSeconds + shutdownMarginSeconds (%d): a pod stopped mid-task must be able to finish it" $grace (int $needed)) -}}
{{- end -}}
{{- if and (eq .Values.runtime.type "comfyui") (or .Values.runtime.sdModelCheckpoint .Values.runtime.dynamicModel) -}}
{{- fail "runtime.sdModelCheckpoint and runtime.dynamicModel apply to sdwebui runtimes only" -}}
{{- end -}}
{{- end -}}
