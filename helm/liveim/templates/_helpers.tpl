{{/*
Names. liveim.fullname is the release's base name (at most 63 characters, less
room for a component suffix); every object is <fullname>-<component>.
*/}}
{{- define "liveim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "liveim.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "liveim.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of a component's objects. Call with (dict "ctx" $ "component" "gateway").
*/}}
{{- define "liveim.labels" -}}
helm.sh/chart: {{ include "liveim.chart" .ctx }}
{{ include "liveim.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | toString | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: liveim
{{- end }}

{{/*
Selector labels of a component's pods; they never change over upgrades.
*/}}
{{- define "liveim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "liveim.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The label of the Services of internal listeners (/metrics), which the
ServiceMonitors select; the public gateway Service has none.
*/}}
{{- define "liveim.internalLabel" -}}
liveim/listener: internal
{{- end }}

{{- define "liveim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "liveim.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "liveim.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
The LIVEIM_ environment variable of a flag: --foo-bar is LIVEIM_FOO_BAR.
*/}}
{{- define "liveim.flagEnv" -}}
{{- printf "LIVEIM_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
A value as a flag reads it. Whole numbers parsed from YAML are float64 and
would print as 1e+06: print them as integers.
*/}}
{{- define "liveim.flagValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
Environment of <component>.flags, refusing flags the chart sets itself.
Call with (dict "flags" map "managed" list "component" name).
*/}}
{{- define "liveim.flagsEnv" -}}
{{- range $flag, $value := .flags }}
{{- if has $flag $.managed }}
{{- fail (printf "%s.flags.%s: the chart sets --%s itself; use the chart's value for it" $.component $flag $flag) }}
{{- end }}
{{- if not (regexMatch "^[a-z0-9][a-z0-9-]*$" $flag) }}
{{- fail (printf "%s.flags.%s: a flag name is lower case letters, digits and '-', without leading dashes" $.component $flag) }}
{{- end }}
- name: {{ include "liveim.flagEnv" $flag }}
  value: {{ include "liveim.flagValue" $value | quote }}
{{- end }}
{{- end }}

{{/*
The Secret holding the NATS users' passwords (nats.auth), refusing values
that cannot work.
*/}}
{{- define "liveim.natsAuthSecret" -}}
{{- $auth := .Values.nats.auth }}
{{- $fromValues := or $auth.routerPassword $auth.gatewayPassword }}
{{- if and $auth.existingSecret $fromValues }}
{{- fail "nats.auth: set existingSecret or routerPassword and gatewayPassword, not both" }}
{{- end }}
{{- if and $fromValues (not (and $auth.routerPassword $auth.gatewayPassword)) }}
{{- fail "nats.auth: set both routerPassword and gatewayPassword" }}
{{- end }}
{{- if and $fromValues (eq (toString $auth.routerPassword) (toString $auth.gatewayPassword)) }}
{{- fail "nats.auth: routerPassword and gatewayPassword must differ, or a gateway could log in as a router" }}
{{- end }}
{{- $auth.existingSecret | default (printf "%s-nats-auth" (include "liveim.fullname" .)) }}
{{- end }}

{{/*
Where a pod finds its NATS credentials and CA.
*/}}
{{- define "liveim.natsAuthDir" -}}/etc/liveim/nats-auth{{- end }}
{{- define "liveim.natsTLSDir" -}}/etc/liveim/nats-tls{{- end }}

{{/*
NATS credentials of a component: its user and the file of its password,
and the TLS files. Call with (dict "ctx" $ "component" "gateway").
*/}}
{{- define "liveim.natsEnv" -}}
{{- $nats := .ctx.Values.nats }}
{{- if $nats.auth.enabled }}
- name: LIVEIM_NATS_USER
  value: {{ printf "liveim-%s" .component | quote }}
- name: LIVEIM_NATS_PASSWORD_FILE
  value: {{ printf "%s/%s-password" (include "liveim.natsAuthDir" .) .component | quote }}
{{- end }}
{{- if $nats.tls.existingSecret }}
- name: LIVEIM_NATS_TLS_CA
  value: {{ printf "%s/ca.crt" (include "liveim.natsTLSDir" .) | quote }}
{{- if $nats.tls.clientCert }}
- name: LIVEIM_NATS_TLS_CERT
  value: {{ printf "%s/tls.crt" (include "liveim.natsTLSDir" .) | quote }}
- name: LIVEIM_NATS_TLS_KEY
  value: {{ printf "%s/tls.key" (include "liveim.natsTLSDir" .) | quote }}
{{- end }}
{{- else if $nats.tls.clientCert }}
{{- fail "nats.tls.clientCert needs nats.tls.existingSecret: the Secret with ca.crt, tls.crt and tls.key" }}
{{- end }}
{{- end }}

{{/*
Volume mounts and volumes of the NATS credentials. A component's volume
holds its own role's password only. Call with (dict "ctx" $ "component"
"gateway").
*/}}
{{- define "liveim.natsVolumeMounts" -}}
{{- if .ctx.Values.nats.auth.enabled }}
- name: nats-auth
  mountPath: {{ include "liveim.natsAuthDir" . }}
  readOnly: true
{{- end }}
{{- if .ctx.Values.nats.tls.existingSecret }}
- name: nats-tls
  mountPath: {{ include "liveim.natsTLSDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "liveim.natsVolumes" -}}
{{- $nats := .ctx.Values.nats }}
{{- if $nats.auth.enabled }}
- name: nats-auth
  secret:
    secretName: {{ include "liveim.natsAuthSecret" .ctx }}
    defaultMode: 0440
    items:
      - key: {{ .component }}-password
        path: {{ .component }}-password
{{- end }}
{{- with $nats.tls.existingSecret }}
- name: nats-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
      {{- if $nats.tls.clientCert }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- end }}

{{/*
Flags the chart sets on every component, refused in <component>.flags: a
space-separated list (splitList " ").
*/}}
{{- define "liveim.managedFlags" -}}
nats nats-user nats-password-file nats-tls-ca nats-tls-cert nats-tls-key log-level http-addr
{{- end }}

{{/*
Environment every liveim process gets: NATS, log level, pod identity and
OpenTelemetry. Call with (dict "ctx" $ "component" "gateway").
*/}}
{{- define "liveim.commonEnv" -}}
{{- $ctx := .ctx }}
{{- if not $ctx.Values.nats.url }}
{{- fail "nats.url is required: the URL(s) of a NATS cluster with JetStream (see values.yaml)" }}
{{- end }}
- name: LIVEIM_NATS
  value: {{ $ctx.Values.nats.url | quote }}
{{- include "liveim.natsEnv" . }}
- name: LIVEIM_LOG_LEVEL
  value: {{ $ctx.Values.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with $ctx.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $ctx.Values.otel.protocol | quote }}
{{- if not (hasKey $ctx.Values.otel.env "OTEL_RESOURCE_ATTRIBUTES") }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),k8s.deployment.name=%s-%s" (include "liveim.fullname" $ctx) $.component | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := $ctx.Values.otel.env }}
{{- if not (hasPrefix "OTEL_" $name) }}
{{- fail (printf "otel.env.%s: only OTEL_* variables belong here; use %s.extraEnv for others" $name $.component) }}
{{- end }}
{{- if and $ctx.Values.otel.endpoint (has $name (list "OTEL_EXPORTER_OTLP_ENDPOINT" "OTEL_EXPORTER_OTLP_PROTOCOL")) }}
{{- fail (printf "otel.env.%s: set otel.endpoint / otel.protocol instead" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ include "liveim.flagValue" $value | quote }}
{{- end }}
{{- end }}

{{/*
Topology spread over zones and nodes. Call with (dict "ctx" $ "component"
"gateway" "spread" .Values.gateway.topologySpread).
*/}}
{{- define "liveim.topologySpread" -}}
{{- if .spread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .spread.maxSkew }}
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ .spread.zone }}
    labelSelector:
      matchLabels:
        {{- include "liveim.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
  - maxSkew: {{ .spread.maxSkew }}
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ .spread.node }}
    labelSelector:
      matchLabels:
        {{- include "liveim.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end }}

{{/*
HorizontalPodAutoscaler of a component's Deployment. Call with (dict "ctx" $
"component" "gateway" "hpa" .Values.gateway.autoscaling).
*/}}
{{- define "liveim.hpa" -}}
{{- if .hpa.enabled }}
{{- if not (or .hpa.targetCPUUtilizationPercentage .hpa.targetMemoryUtilizationPercentage) }}
{{- fail (printf "%s.autoscaling: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" .component) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "liveim.fullname" .ctx }}-{{ .component }}
  labels:
    {{- include "liveim.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "liveim.fullname" .ctx }}-{{ .component }}
  minReplicas: {{ .hpa.minReplicas }}
  maxReplicas: {{ .hpa.maxReplicas }}
  metrics:
    {{- with .hpa.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with .hpa.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with .hpa.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
PodDisruptionBudget of a component. Call with (dict "ctx" $ "component"
"gateway" "pdb" .Values.gateway.pdb).
*/}}
{{- define "liveim.pdb" -}}
{{- if .pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "liveim.fullname" .ctx }}-{{ .component }}
  labels:
    {{- include "liveim.labels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" .pdb.minAvailable) }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ if kindIs "invalid" .pdb.maxUnavailable }}1{{ else }}{{ .pdb.maxUnavailable }}{{ end }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "liveim.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
The Secret holding the server API's admin key (adminKey): the user's, or
<fullname>-admin-key, which the chart makes.
*/}}
{{- define "liveim.adminKeySecret" -}}
{{- $ak := .Values.adminKey }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" (toString $ak.secretKey)) }}
{{- fail (printf "adminKey.secretKey %q: a Secret key is letters, digits, '-', '_' and '.'" (toString $ak.secretKey)) }}
{{- end }}
{{- $ak.existingSecret | default (printf "%s-admin-key" (include "liveim.fullname" .)) }}
{{- end }}

{{/*
Where a pod finds the admin key: the file --admin-key-file names.
*/}}
{{- define "liveim.adminKeyDir" -}}/etc/liveim/admin-key{{- end }}
{{- define "liveim.adminKeyFile" -}}{{ include "liveim.adminKeyDir" . }}/admin-key{{- end }}

{{/*
Volume mount and volume of the admin key: the Secret's one key, as the file
liveim.adminKeyFile, read-only, readable through the pod's fsGroup only.
*/}}
{{- define "liveim.adminKeyVolumeMount" -}}
- name: admin-key
  mountPath: {{ include "liveim.adminKeyDir" . }}
  readOnly: true
{{- end }}

{{- define "liveim.adminKeyVolume" -}}
- name: admin-key
  secret:
    secretName: {{ include "liveim.adminKeySecret" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.adminKey.secretKey }}
        path: admin-key
{{- end }}

{{/*
The server API's Service (every router's internal listener) as a URL.
*/}}
{{- define "liveim.apiURL" -}}
{{- printf "http://%s-api:%d" (include "liveim.fullname" .) (int .Values.serverAPI.service.port) }}
{{- end }}

{{/*
The first app's gateway URLs, comma separated: firstApp.gatewayURLs, or
else one per Ingress host (wss:// when the host has TLS), at its first
path, which must end in /ws or be a prefix of it. Empty without either.
*/}}
{{- define "liveim.firstAppGatewayURLs" -}}
{{- $urls := list }}
{{- if .Values.firstApp.gatewayURLs }}
{{- $urls = .Values.firstApp.gatewayURLs }}
{{- else if .Values.ingress.enabled }}
{{- $tlsHosts := list }}
{{- range .Values.ingress.tls }}
{{- $tlsHosts = concat $tlsHosts (.hosts | default list) }}
{{- end }}
{{- range .Values.ingress.hosts }}
{{- $path := (first .paths).path | default "/" }}
{{- if not (hasSuffix "/ws" $path) }}
{{- $path = printf "%s/ws" (trimSuffix "/" $path) }}
{{- end }}
{{- $urls = append $urls (printf "%s://%s%s" (ternary "wss" "ws" (has .host $tlsHosts)) .host $path) }}
{{- end }}
{{- end }}
{{- range $urls }}
{{- if not (regexMatch "^wss?://[^/,\\s]+(/[^,\\s]*)?$" .) }}
{{- fail (printf "firstApp.gatewayURLs: %q is not a ws:// or wss:// URL" .) }}
{{- end }}
{{- end }}
{{- join "," $urls }}
{{- end }}
