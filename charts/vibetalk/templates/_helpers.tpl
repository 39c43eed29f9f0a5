{{/* Names and labels of the vibetalk chart. */}}

{{- define "vibetalk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vibetalk.fullname" -}}
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

{{/* The operator's ServiceAccount, ClusterRole, Deployment, Service and leader Lease. */}}
{{- define "vibetalk.operatorName" -}}
{{- printf "%s-operator" (include "vibetalk.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/* Holds the ChatCluster's URLs and JWT secret, and the bundled services' passwords. */}}
{{- define "vibetalk.backendsSecretName" -}}
{{- printf "%s-backends" .Release.Name -}}
{{- end -}}

{{/*
A VibeTalk image reference: [<image.registry>/]<repository>:<tag, default appVersion>. Called with
(list $ .Values.operator.image). image.registry is the chart's own top-level value, not
global.imageRegistry, which the bitnami subcharts read for their images.
*/}}
{{- define "vibetalk.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $registry := (($root.Values.image).registry) | default "" | trimSuffix "/" -}}
{{- $ref := printf "%s:%s" $image.repository ($image.tag | default $root.Chart.AppVersion | toString) -}}
{{- if $registry -}}
{{- printf "%s/%s" $registry $ref -}}
{{- else -}}
{{- $ref -}}
{{- end -}}
{{- end -}}

{{- define "vibetalk.operatorImage" -}}
{{- include "vibetalk.image" (list . .Values.operator.image) -}}
{{- end -}}

{{/* The ChatCluster's spec.image: chatCluster.spec.image when given, else chatCluster.image. */}}
{{- define "vibetalk.chatNodeImage" -}}
{{- ((.Values.chatCluster.spec).image) | default (include "vibetalk.image" (list . .Values.chatCluster.image)) -}}
{{- end -}}

{{/* Labels of every object; the operator's also carry component: operator. */}}
{{- define "vibetalk.labels" -}}
app.kubernetes.io/name: {{ include "vibetalk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: vibetalk
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "vibetalk.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "vibetalk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "vibetalk.operatorLabels" -}}
{{ include "vibetalk.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/*
The full name a bitnami subchart gives its objects (common.names.fullname), so the URLs below name
the Services it creates. Called with (list $ "rabbitmq").
*/}}
{{- define "vibetalk.dependencyFullname" -}}
{{- $root := index . 0 -}}
{{- $chart := index . 1 -}}
{{- $values := index $root.Values $chart | default dict -}}
{{- if $values.fullnameOverride -}}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default $chart $values.nameOverride -}}
{{- $release := regexReplaceAll "(-?[^a-z\\d\\-])+-?" (lower $root.Release.Name) "-" -}}
{{- if contains $name $release -}}
{{- $release | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $release $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <service>.<namespace>.svc.<clusterDomain> */}}
{{- define "vibetalk.serviceHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s.%s.svc.%s" (index . 1) $root.Release.Namespace $root.Values.clusterDomain -}}
{{- end -}}

{{/*
A password kept in the backends Secret: the value given, else the one already stored (so upgrades
keep it), else a new random one. Called with (dict "root" $ "key" "redis-password" "value" "...").
*/}}
{{- define "vibetalk.password" -}}
{{- $root := .root -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "vibetalk.backendsSecretName" $root) -}}
{{- $stored := "" -}}
{{- if and $existing $existing.data -}}
{{- $stored = index $existing.data .key | default "" -}}
{{- end -}}
{{- if $stored -}}
{{- $stored | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
One NetworkPolicy egress rule from (list <rule> <protocols>): every port of rule.ports with each
protocol, and rule.to as the peers when given (absent: any address on those ports).
*/}}
{{- define "vibetalk.egressRule" -}}
{{- $rule := index . 0 -}}
{{- $protocols := index . 1 -}}
- ports:
    {{- range $port := $rule.ports }}
    {{- range $protocol := $protocols }}
    - port: {{ $port }}
      protocol: {{ $protocol }}
    {{- end }}
    {{- end }}
  {{- with $rule.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
