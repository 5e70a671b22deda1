{{/* Common names and labels. */}}
{{- define "fillpath.labels" -}}
app.kubernetes.io/name: fillpath
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: fillpath
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fillpath.image" -}}
{{ .image.repository }}:{{ .image.tag | default .chart.AppVersion }}
{{- end -}}

{{- define "fillpath.operatorName" -}}
{{ .Release.Name }}-operator
{{- end -}}

{{/* Hardened container defaults shared by every fillpath container ("restricted" Pod
Security). devMode (the Tilt loop) leaves the root filesystem writable for live updates. */}}
{{- define "fillpath.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ not .Values.devMode }}
seccompProfile:
  type: RuntimeDefault
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The writable cache numba needs (the root filesystem is read-only). */}}
{{- define "fillpath.cacheMount" -}}
- name: cache
  mountPath: /var/cache/fillpath
{{- end -}}
{{- define "fillpath.cacheVolume" -}}
- name: cache
  emptyDir: {}
{{- end -}}

{{- define "fillpath.requireConnections" -}}
{{- if not .Values.connections.existingSecret -}}
{{- fail "connections.existingSecret must name a Secret with FILLPATH_PG_DSN, FILLPATH_REDIS_URL and FILLPATH_PULSAR_URL when a core service is enabled" -}}
{{- end -}}
{{- end -}}
