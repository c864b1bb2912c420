{{/* Names and labels shared by every object of the chart. */}}
{{- define "vpp-router.name" -}}
router
{{- end -}}

{{- define "vpp-router.labels" -}}
app.kubernetes.io/name: vpp-router
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: data-plane
app.kubernetes.io/part-of: vpp-router
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vpp-router.selectorLabels" -}}
app.kubernetes.io/name: vpp-router
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vpp-router.networks" -}}
[{{- range $i, $n := .Values.sriov.networks }}{{ if $i }},{{ end }}{"name":"{{ $n.name }}","interface":"{{ $n.interface }}"}{{- end }}]
{{- end -}}

{{- define "vpp-router.vfCount" -}}
{{ len .Values.sriov.networks }}
{{- end -}}
