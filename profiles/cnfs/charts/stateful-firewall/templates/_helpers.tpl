{{- define "fw.labels" -}}
app.kubernetes.io/name: stateful-firewall
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "fw.selector" -}}
app.kubernetes.io/name: stateful-firewall
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
