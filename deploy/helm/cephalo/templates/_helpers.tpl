{{/* The five services: values key -> component name, Python module, env prefix. */}}
{{- define "cephalo.services" -}}
apiGateway: {component: api-gateway, module: cephalo_gateway, prefix: GATEWAY}
releaseService: {component: release-service, module: cephalo_release, prefix: RELEASE}
deployOrchestrator: {component: deploy-orchestrator, module: cephalo_orchestrator, prefix: ORCHESTRATOR}
packageFeed: {component: package-feed, module: cephalo_feed, prefix: FEED}
agentGateway: {component: agent-gateway, module: cephalo_agent_gateway, prefix: AGENT_GATEWAY}
{{- end -}}

{{- define "cephalo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cephalo.fullname" -}}
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

{{- define "cephalo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "cephalo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cephalo
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "api-gateway"). */}}
{{- define "cephalo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cephalo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "cephalo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cephalo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* One image per service (its Dockerfile): call with (dict "root" $ "component" "api-gateway"). */}}
{{- define "cephalo.image" -}}
{{- $image := .root.Values.image -}}
{{- printf "%s/%s/%s:%s" $image.registry $image.repository .component (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{- define "cephalo.secretName" -}}
{{- default (include "cephalo.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "cephalo.connectionSecretName" -}}
{{- printf "%s-connections" (include "cephalo.fullname" .) -}}
{{- end -}}

{{- define "cephalo.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}
name: {{ .Values.database.existingSecret }}
key: {{ .Values.database.existingSecretKey }}
{{- else -}}
name: {{ include "cephalo.connectionSecretName" . }}
key: database-url
{{- end -}}
{{- end -}}

{{- define "cephalo.natsSecret" -}}
{{- if .Values.nats.existingSecret -}}
name: {{ .Values.nats.existingSecret }}
key: {{ .Values.nats.existingSecretKey }}
{{- else -}}
name: {{ include "cephalo.connectionSecretName" . }}
key: nats-url
{{- end -}}
{{- end -}}

{{- define "cephalo.masterKeySecret" -}}
{{- if .Values.masterKey.existingSecret -}}
name: {{ .Values.masterKey.existingSecret }}
key: {{ .Values.masterKey.existingSecretKey }}
{{- else -}}
name: {{ printf "%s-master-key" (include "cephalo.fullname" .) }}
key: master-key
{{- end -}}
{{- end -}}

{{- define "cephalo.identitySecretName" -}}
{{- default (printf "%s-agent-gateway-identity" (include "cephalo.fullname" .)) .Values.agentGateway.identityExistingSecret -}}
{{- end -}}

{{/* A generated secret value that survives upgrades: the live Secret's value if any, else random. */}}
{{- define "cephalo.keep" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- .generated | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Environment every service shares: call with (dict "root" $ "svc" $svc). */}}
{{- define "cephalo.commonEnv" -}}
{{- $p := printf "CEPHALO_%s_" .svc.prefix -}}
- name: {{ $p }}HOST
  value: "0.0.0.0"
- name: {{ $p }}LOG_JSON
  value: {{ .root.Values.logJson | quote }}
- name: {{ $p }}LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: {{ $p }}DATABASE__POOL_SIZE
  value: {{ .root.Values.database.poolSize | quote }}
- name: {{ $p }}DATABASE__URL
  valueFrom:
    secretKeyRef:
      {{- include "cephalo.databaseSecret" .root | nindent 6 }}
- name: {{ $p }}NATS__URL
  valueFrom:
    secretKeyRef:
      {{- include "cephalo.natsSecret" .root | nindent 6 }}
- name: {{ $p }}INTERNAL_TOKEN_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "cephalo.secretName" .root }}
      key: internal-token-secret
{{- end -}}

{{- define "cephalo.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
serviceAccountName: {{ include "cephalo.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "cephalo.bundledPostgresPassword" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "cephalo.connectionSecretName" .) -}}
{{- if and $existing (hasKey $existing.data "postgres-password") -}}
{{- index $existing.data "postgres-password" | b64dec -}}
{{- else -}}
{{- $_ := set .Values.postgresql "generatedPassword" (default (randAlphaNum 32) .Values.postgresql.generatedPassword) -}}
{{- .Values.postgresql.generatedPassword -}}
{{- end -}}
{{- end -}}
