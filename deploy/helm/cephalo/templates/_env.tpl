{{- define "cephalo.url" -}}
{{- $svc := get (include "cephalo.services" .root | fromYaml) .key -}}
{{- printf "http://%s-%s:%v" (include "cephalo.fullname" .root) $svc.component (get .root.Values .key).port -}}
{{- end -}}

{{/* Settings only one service reads: call with (dict "root" $ "key" "apiGateway"). */}}
{{- define "cephalo.serviceEnv" -}}
{{- $v := .root.Values -}}
{{- $root := .root -}}
{{- if eq .key "apiGateway" }}
- name: CEPHALO_GATEWAY_RELEASE_SERVICE_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "releaseService") | quote }}
- name: CEPHALO_GATEWAY_ORCHESTRATOR_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "deployOrchestrator") | quote }}
- name: CEPHALO_GATEWAY_PACKAGE_FEED_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "packageFeed") | quote }}
- name: CEPHALO_GATEWAY_AGENT_GATEWAY_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "agentGateway") | quote }}
- name: CEPHALO_GATEWAY_SESSION_COOKIE_SECURE
  value: {{ $v.apiGateway.sessionCookieSecure | quote }}
- name: CEPHALO_GATEWAY_SESSION_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "cephalo.secretName" $root }}
      key: session-secret
{{- if $v.apiGateway.bootstrapApiKey }}
- name: CEPHALO_GATEWAY_BOOTSTRAP_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "cephalo.fullname" $root }}-bootstrap
      key: bootstrap-api-key
{{- end }}
{{- else if eq .key "releaseService" }}
- name: CEPHALO_RELEASE_MASTER_KEY_FILE
  value: "/var/run/cephalo/master-key/master-key"
- name: CEPHALO_RELEASE_FEED_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "packageFeed") | quote }}
{{- else if eq .key "deployOrchestrator" }}
- name: CEPHALO_ORCHESTRATOR_AGENT_GATEWAY_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "agentGateway") | quote }}
- name: CEPHALO_ORCHESTRATOR_PACKAGE_FEED_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "packageFeed") | quote }}
- name: CEPHALO_ORCHESTRATOR_PACKAGE_DOWNLOAD_BASE_URL
  value: {{ $v.publicUrl | quote }}
- name: CEPHALO_ORCHESTRATOR_MAX_CONCURRENT_TASKS
  value: {{ $v.deployOrchestrator.maxConcurrentTasks | quote }}
{{- else if eq .key "packageFeed" }}
- name: CEPHALO_FEED_RELEASE_SERVICE_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "releaseService") | quote }}
- name: CEPHALO_FEED_STORAGE_DIR
  value: "/var/lib/cephalo/packages"
- name: CEPHALO_FEED_STORAGE_BACKEND
  value: {{ $v.packages.storageBackend | quote }}
- name: CEPHALO_FEED_PUBLIC_BASE_URL
  value: {{ $v.publicUrl | quote }}
- name: CEPHALO_FEED_LIMITS__MAX_UPLOAD_BYTES
  value: {{ $v.packages.maxUploadBytes | int64 | quote }}
- name: CEPHALO_FEED_DOWNLOAD_URL_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "cephalo.secretName" $root }}
      key: download-url-secret
{{- if eq $v.packages.storageBackend "s3" }}
- name: CEPHALO_FEED_S3__BUCKET
  value: {{ $v.packages.s3.bucket | quote }}
- name: CEPHALO_FEED_S3__PREFIX
  value: {{ $v.packages.s3.prefix | quote }}
- name: CEPHALO_FEED_S3__REGION
  value: {{ $v.packages.s3.region | quote }}
{{- if $v.packages.s3.endpointUrl }}
- name: CEPHALO_FEED_S3__ENDPOINT_URL
  value: {{ $v.packages.s3.endpointUrl | quote }}
{{- end }}
{{- if $v.packages.s3.existingSecret }}
- name: CEPHALO_FEED_S3__ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $v.packages.s3.existingSecret }}
      key: access-key-id
- name: CEPHALO_FEED_S3__SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.packages.s3.existingSecret }}
      key: secret-access-key
{{- end }}
{{- end }}
{{- else if eq .key "agentGateway" }}
- name: CEPHALO_AGENT_GATEWAY_RELEASE_SERVICE_URL
  value: {{ include "cephalo.url" (dict "root" $root "key" "releaseService") | quote }}
- name: CEPHALO_AGENT_GATEWAY_DATA_DIR
  value: "/var/lib/cephalo/agent-gateway"
- name: CEPHALO_AGENT_GATEWAY_POLLING_HOST
  value: "0.0.0.0"
- name: CEPHALO_AGENT_GATEWAY_POLLING_PORT
  value: {{ $v.agentGateway.pollingPort | quote }}
- name: CEPHALO_AGENT_GATEWAY_PUBLIC_POLLING_ENDPOINT
  value: {{ $v.agentGateway.publicPollingEndpoint | quote }}
- name: CEPHALO_AGENT_GATEWAY_SSH_ACCOUNT_KEY_FILE
  value: "/var/run/cephalo/secrets/ssh-account-key"
- name: CEPHALO_AGENT_GATEWAY_OUTBOUND__ALLOW
  value: {{ $v.agentGateway.outboundAllow | toJson | quote }}
- name: CEPHALO_AGENT_GATEWAY_REPLICA_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- end -}}
