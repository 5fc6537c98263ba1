{{/*
The start of every object's name: fullnameOverride, else <release>-<nameOverride or the chart's
name>, or only the release's name when it holds that name already (Helm's own convention). At most
50 characters, so that <fullname>-<component> is a valid Service name (63).
*/}}
{{- define "ordersaga.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- $fullname := .Values.fullnameOverride | default (ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name)) -}}
{{- if gt (len $fullname) 50 -}}
{{- fail (printf "the objects' names would start with %q, %d characters: at most 50 fit a Service's name (<name>-notification); set fullnameOverride, or a shorter release name" $fullname (len $fullname)) -}}
{{- end -}}
{{- $fullname -}}
{{- end -}}

{{/* What the release's topics, consumer groups and transactional ids start with: kafka.topicPrefix, else "<fullname>.". */}}
{{- define "ordersaga.topicPrefix" -}}
{{- if kindIs "string" .Values.kafka.topicPrefix -}}
{{- .Values.kafka.topicPrefix -}}
{{- else -}}
{{- printf "%s." (include "ordersaga.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Standard labels (https://helm.sh/docs/chart_best_practices/labels/). */}}
{{- define "ordersaga.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The image of a component: (dict "root" $ "component" "order"). */}}
{{- define "ordersaga.image" -}}
{{- $override := index .root.Values.images .component | default dict -}}
{{- $repository := $override.repository | default (printf "%s/ordersaga-%s" .root.Values.image.registry .component) -}}
{{- $tag := $override.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if eq $tag "latest" -}}{{- fail "image tag \"latest\" is not allowed: pin a version" -}}{{- end -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{/* The JWKS URL of the services (AUTH_JWKS_URL): authentication on needs keys to verify tokens with. */}}
{{- define "ordersaga.authJwksUrl" -}}
{{- if and .Values.auth.enabled (not (or .Values.auth.jwksUrl .Values.auth.jwksSecret)) -}}
{{- fail "auth.enabled is true but neither auth.jwksUrl nor auth.jwksSecret is set: give the keys that verify the APIs' bearer tokens, or set auth.enabled=false" -}}
{{- end -}}
{{- ternary .Values.auth.jwksUrl "" .Values.auth.enabled -}}
{{- end -}}
