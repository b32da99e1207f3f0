{{/* Object names stay within 63 characters: Service names and label values allow no more. */}}
{{- define "iotedge-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "iotedge-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "iotedge-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "iotedge-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The operator pod's selector. Module pods carry app.kubernetes.io/instance=<EdgeDeployment> and may carry any
app.kubernetes.io/name, so the component keeps them out of it.
*/}}
{{- define "iotedge-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iotedge-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "iotedge-operator.serviceAccountSubject" -}}
- kind: ServiceAccount
  name: {{ include "iotedge-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* Cluster-scoped objects of a per-device release carry the namespace, since every device may use the same release name. */}}
{{- define "iotedge-operator.nodeReaderName" -}}
{{- printf "%s-%s-nodes" (include "iotedge-operator.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "iotedge-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .Values.image.repository $tag }}
{{- else if hasPrefix "@" $tag }}
{{- printf "%s%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "iotedge-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{- define "iotedge-operator.leaseName" -}}
{{- default (include "iotedge-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "iotedge-operator.watchedNamespaces" -}}
{{- if eq .Values.mode "namespace" }}own
{{- else if .Values.watchNamespaces }}{{ join "," .Values.watchNamespaces }}
{{- else }}all
{{- end }}
{{- end }}

{{/*
The operator's rights: the same rules as manifests/base/rbac.yaml, split into the namespaced ones and the
cluster-scoped Node rule. test/integration/helm.test.ts compares the rendered rules with that file.
*/}}
{{- define "iotedge-operator.namespacedRules" -}}
# The desired state it reconciles, and the status it reports.
- apiGroups: [iotedge-operator.io]
  resources: [edgedeployments]
  verbs: [get, list, watch, patch]
- apiGroups: [iotedge-operator.io]
  resources: [edgedeployments/status]
  verbs: [get, patch, update]
# Setting blockOwnerDeletion on children requires the right to update the owner's finalizers.
- apiGroups: [iotedge-operator.io]
  resources: [edgedeployments/finalizers]
  verbs: [update]
# The objects it creates for modules: server-side apply needs create and patch; pruning needs delete.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods, services, configmaps, serviceaccounts, persistentvolumeclaims, secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
# Events on EdgeDeployments.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{- define "iotedge-operator.nodeRules" -}}
# Reported runtime.platform (os, architecture) comes from the Node objects.
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list]
{{- end }}

{{- define "iotedge-operator.leaderElectionRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end }}

{{/* The Secret holding the device connection string, and its key. */}}
{{- define "iotedge-operator.iotHubSecretName" -}}
{{- if .Values.iotHub.existingSecret }}{{ .Values.iotHub.existingSecret }}
{{- else }}{{ printf "%s-iothub" (include "iotedge-operator.fullname" .) }}
{{- end }}
{{- end }}

{{- define "iotedge-operator.iotHubSecretKey" -}}
{{- if .Values.iotHub.existingSecret }}{{ .Values.iotHub.existingSecretKey }}{{ else }}connectionString{{ end }}
{{- end }}

{{/* The value of one Key=value part of the connection string, or nothing. */}}
{{- define "iotedge-operator.connectionStringPart" -}}
{{- $found := "" }}
{{- range (splitList ";" .connectionString) }}
{{- $pair := splitn "=" 2 . }}
{{- if eq (lower $pair._0) (lower $.key) }}{{ $found = $pair._1 }}{{ end }}
{{- end }}
{{- $found }}
{{- end }}

{{- define "iotedge-operator.deviceId" -}}
{{- if .Values.iotHub.deviceId }}{{ .Values.iotHub.deviceId }}
{{- else if .Values.iotHub.connectionString }}{{ include "iotedge-operator.connectionStringPart" (dict "connectionString" .Values.iotHub.connectionString "key" "DeviceId") }}
{{- end }}
{{- end }}

{{/* Rules between values that a JSON schema cannot say clearly; each names the value at fault. */}}
{{- define "iotedge-operator.validate" -}}
{{- $hub := .Values.iotHub }}
{{- if and $hub.connectionString $hub.existingSecret }}
{{- fail "iotHub: give iotHub.connectionString or iotHub.existingSecret, not both" }}
{{- end }}
{{- if $hub.connectionString }}
{{- range list "HostName" "DeviceId" "SharedAccessKey" }}
{{- if not (include "iotedge-operator.connectionStringPart" (dict "connectionString" $hub.connectionString "key" .)) }}
{{- fail (printf "iotHub.connectionString: has no %s=…; expected HostName=<hub>;DeviceId=<device>;SharedAccessKey=<key> (the device's primary connection string)" .) }}
{{- end }}
{{- end }}
{{- $fromString := include "iotedge-operator.connectionStringPart" (dict "connectionString" $hub.connectionString "key" "DeviceId") }}
{{- if and $hub.deviceId (ne $hub.deviceId $fromString) }}
{{- fail (printf "iotHub.deviceId: %q differs from the connection string's DeviceId %q; leave iotHub.deviceId empty" $hub.deviceId $fromString) }}
{{- end }}
{{- end }}
{{- end }}
