{{/* The name of every object: <release>-nskd, or the release when it says nskd. */}}
{{- define "nskd.fullname" -}}
{{- if contains "nskd" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-nskd" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nskd.selectorLabels" -}}
app.kubernetes.io/name: nskd
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nskd.labels" -}}
{{ include "nskd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "nskd.tokensSecret" -}}
{{- default (printf "%s-tokens" (include "nskd.fullname" .)) .Values.tokens.existingSecret -}}
{{- end -}}

{{/* A TOML string (JSON string syntax is TOML basic-string syntax). */}}
{{- define "nskd.toml" -}}
{{- toJson . -}}
{{- end -}}

{{/* config.toml: the daemon's configuration, from the values. */}}
{{- define "nskd.config" -}}
kubeconfig_dir = "/var/lib/nskd/kubeconfigs"
{{- with .Values.defaultCluster }}
default_cluster = {{ include "nskd.toml" . }}
{{- end }}
auto_discovery = true
read_only = {{ .Values.readOnly }}
disable_destructive = {{ .Values.disableDestructive }}
denied_resources = {{ toJson .Values.deniedResources }}

[nsk]
source = "rancher"
rancher_url = {{ include "nskd.toml" (required "rancher.url is required" .Values.rancher.url) }}
rancher_token_file = "/var/run/secrets/nskd/rancher-token"
rancher_insecure = {{ .Values.rancher.insecure }}
auto_refresh = true
refresh_interval = {{ include "nskd.toml" .Values.rancher.refreshInterval }}
{{- with .Values.rancher.clusterPattern }}
cluster_pattern = {{ include "nskd.toml" . }}
{{- end }}
exclude_clusters = {{ toJson .Values.rancher.excludeClusters }}

[server]
environment = {{ include "nskd.toml" .Values.environment }}
http_bind = "0.0.0.0"
port = {{ .Values.service.metricsPort }}
http_token_file = "/var/run/secrets/nskd/http-token"
log_format = "json"
audit_log = "/var/lib/nskd/audit.jsonl"
{{- if .Values.replication.enabled }}

[replication]
namespace = {{ include "nskd.toml" .Release.Namespace }}
lease = {{ include "nskd.toml" (default (include "nskd.fullname" .) .Values.replication.lease) }}
lease_duration = {{ include "nskd.toml" .Values.replication.leaseDuration }}
{{- end }}
{{- if .Values.httpAuth.enabled }}

[http_auth]
issuer = {{ include "nskd.toml" (required "httpAuth.issuer is required when httpAuth.enabled" .Values.httpAuth.issuer) }}
audience = {{ include "nskd.toml" (required "httpAuth.audience is required when httpAuth.enabled" .Values.httpAuth.audience) }}
required_claims = [ {{- range $i, $k := keys .Values.httpAuth.requiredClaims | sortAlpha }}{{ if $i }},{{ end }} {{ include "nskd.toml" (printf "%s=%s" $k (toString (index $.Values.httpAuth.requiredClaims $k))) }}{{ end }} ]
username_claim = {{ include "nskd.toml" .Values.httpAuth.usernameClaim }}
groups_claim = {{ include "nskd.toml" .Values.httpAuth.groupsClaim }}
impersonate = {{ .Values.httpAuth.impersonate }}
{{- end }}
{{- range .Values.access }}

[[access]]
group = {{ include "nskd.toml" (required "every access rule needs a group" .group) }}
{{- if hasKey . "readOnly" }}
read_only = {{ .readOnly }}
{{- end }}
{{- if hasKey . "disableDestructive" }}
disable_destructive = {{ .disableDestructive }}
{{- end }}
{{- with .toolsets }}
toolsets = {{ toJson . }}
{{- end }}
{{- with .clusters }}
clusters = {{ toJson . }}
{{- end }}
{{- end }}
{{- with .Values.extraConfig }}

{{ . }}
{{- end }}
{{- end -}}
