{{/* Common labels on every object of the release. */}}
{{- define "gpu-nodepool.labels" -}}
app.kubernetes.io/name: gpu-nodepool
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
sd.pool: {{ .Values.poolName }}
{{- end -}}

{{/* Labels every node of the pool carries (NodePool template labels). */}}
{{- define "gpu-nodepool.nodeLabels" -}}
{{- $labels := dict "sd.pool" .Values.poolName -}}
{{- if .Values.runtime -}}
{{- $_ := set $labels "sd.runtime" .Values.runtime -}}
{{- end -}}
{{- toYaml (merge $labels (.Values.nodeLabels | default dict)) -}}
{{- end -}}

{{/*
Checks JSON Schema cannot express; each fails the render with the value's path.
*/}}
{{- define "gpu-nodepool.validate" -}}
{{- if and .Values.imageCache.snapshotID .Values.instanceStore.enabled -}}
{{- fail "imageCache.snapshotID and instanceStore.enabled are mutually exclusive: the RAID0 bind mounts hide the images restored from the snapshot on the data volume; choose one" -}}
{{- end -}}
{{- if and (not (kindIs "invalid" .Values.imageCache.volumeInitializationRate)) (not .Values.imageCache.snapshotID) -}}
{{- fail "imageCache.volumeInitializationRate requires imageCache.snapshotID" -}}
{{- end -}}
{{- if and (hasSuffix "@latest" .Values.amiAlias) (not .Values.allowLatestAmi) -}}
{{- fail (printf "amiAlias %s is not pinned: use bottlerocket@vX.Y.Z, or set allowLatestAmi: true to accept every new AMI" .Values.amiAlias) -}}
{{- end -}}
{{- if not (or .Values.spot.enabled .Values.onDemand.enabled) -}}
{{- fail "spot.enabled and onDemand.enabled are both false: the pool would have no NodePool" -}}
{{- end -}}
{{- if and .Values.spot.enabled .Values.onDemand.enabled (le (int .Values.spot.weight) (int .Values.onDemand.weight)) -}}
{{- fail (printf "spot.weight (%d) must be greater than onDemand.weight (%d) so spot capacity is tried first" (int .Values.spot.weight) (int .Values.onDemand.weight)) -}}
{{- end -}}
{{- end -}}

{{/* Bottlerocket settings TOML for userData (empty when nothing to set). */}}
{{- define "gpu-nodepool.userData" -}}
{{- $soci := .Values.instanceStore.soci | default dict -}}
{{- if and .Values.instanceStore.enabled $soci.enabled -}}
[settings.container-runtime]
snapshotter = "soci"

[settings.container-runtime-plugins.soci-snapshotter]
pull-mode = "parallel-pull-unpack"

[settings.container-runtime-plugins.soci-snapshotter.parallel-pull-unpack]
max-concurrent-downloads-per-image = {{ int $soci.maxConcurrentDownloadsPerImage }}
concurrent-download-chunk-size = {{ $soci.concurrentDownloadChunkSize | quote }}
max-concurrent-unpacks-per-image = {{ int $soci.maxConcurrentUnpacksPerImage }}
discard-unpacked-layers = {{ $soci.discardUnpackedLayers }}

# instanceStorePolicy RAID0 makes Karpenter bind container storage onto the instance store
# (bootstrap command 000-mount-instance-storage). Depending on the Karpenter and AMI
# versions that bind may omit the SOCI snapshotter's directory; bind it too, best effort.
[settings.bootstrap-commands.010-bind-soci-snapshotter]
commands = [["apiclient", "ephemeral-storage", "bind", "--dirs", "/var/lib/soci-snapshotter"]]
essential = false
mode = "always"
{{ end -}}
{{- with .Values.extraUserData }}
{{ . }}
{{- end -}}
{{- end -}}
