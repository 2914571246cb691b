{{/* Chart name, overridable. */}}
{{- define "reflector-gpu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: <release>-<chart>, or <release> when it already holds the chart name. */}}
{{- define "reflector-gpu.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "reflector-gpu.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name and instance: what every object of the release shares. */}}
{{- define "reflector-gpu.baseSelector" -}}
app.kubernetes.io/name: {{ include "reflector-gpu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of the operator pods (stable across upgrades). */}}
{{- define "reflector-gpu.selectorLabels" -}}
{{ include "reflector-gpu.baseSelector" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Standard labels without component (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */}}
{{- define "reflector-gpu.commonLabels" -}}
helm.sh/chart: {{ include "reflector-gpu.chart" . }}
{{ include "reflector-gpu.baseSelector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: reflector-gpu
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of the operator's objects. */}}
{{- define "reflector-gpu.labels" -}}
{{ include "reflector-gpu.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "reflector-gpu.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "reflector-gpu.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "reflector-gpu.image" -}}
{{- if .Values.image.override -}}
{{- .Values.image.override -}}
{{- else -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .Values.image.registry) .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Namespace of the ready-made ReflectorGPU. */}}
{{- define "reflector-gpu.rgpuNamespace" -}}
{{- default .Release.Namespace .Values.reflectorGPU.namespace -}}
{{- end -}}
