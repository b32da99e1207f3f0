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
The operator's rights: the same rules as manifests/base/rbac.yaml, split into the namespaced ones, the
Namespace labels for Pod Security Admission and the cluster-scoped Node rule. Every verb is one the operator
sends (docs/security.md lists them by call site); test/integration/rbac.test.ts runs the operator under them
in each mode, so a missing rule fails a test. test/integration/helm.test.ts compares them with that file.
*/}}
{{- define "iotedge-operator.namespacedRules" -}}
# The desired state it reconciles; patch adds twin sync's finalizer and applies the spec from IoT Hub.
- apiGroups: [iotedge-operator.io]
  resources: [edgedeployments]
  verbs: [get, list, watch, patch]
# The status it reports, by server-side apply.
- apiGroups: [iotedge-operator.io]
  resources: [edgedeployments/status]
  verbs: [patch]
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
# The built-in hub's connection table (status.edgeHub): GET its /status through the API server's pod proxy.
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
# Events on EdgeDeployments (created, never updated).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
Pod Security Admission labels on served namespaces (securityPolicy.labelNamespaces): the operator reads the
Namespace, then server-side applies the label. Bound by a RoleBinding in a namespace, this reaches that
Namespace object alone (the API server authorizes GET /api/v1/namespaces/<ns> in namespace <ns>).
*/}}
{{- define "iotedge-operator.namespaceLabelRules" -}}
{{- if ne .Values.securityPolicy.labelNamespaces false -}}
# Pod Security Admission labels on the namespaces it serves.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, patch]
{{- end }}
{{- end }}

{{- define "iotedge-operator.nodeRules" -}}
# Reported runtime.platform (os, architecture) comes from the Node objects.
- apiGroups: [""]
  resources: [nodes]
  verbs: [list]
{{- end }}

{{/* The Lease by name; create cannot be narrowed by name (the object has no name before it exists). */}}
{{- define "iotedge-operator.leaderElectionRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [{{ include "iotedge-operator.leaseName" . | quote }}]
  verbs: [get, update]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
{{- end }}

{{/* Cluster-mode objects without watchNamespaces: the operator's rights reach every namespace. */}}
{{- define "iotedge-operator.allNamespaces" -}}
{{- if and (eq .Values.mode "cluster") (not .Values.watchNamespaces) }}true{{ end }}
{{- end }}

{{/* The ServiceAccount's user name, as the API server sees it in a request. */}}
{{- define "iotedge-operator.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "iotedge-operator.fullname" .) }}
{{- end }}

{{- define "iotedge-operator.admissionPolicyName" -}}
{{- printf "%s-%s-writes" (include "iotedge-operator.fullname" .) .Release.Namespace }}
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

{{/*
The admission policy's spec; manifests/base/admission-policy.yaml holds the same (test/integration/helm.test.ts
compares them), with a matchCondition of its own. The kinds are the operator's ownedKinds
(src/controller/resources.ts; test/unit/rbac-manifests.test.ts keeps them equal). Events are left out: the
operator cannot label the Events it records about an EdgeDeployment, and an Event grants nothing.
*/}}
{{- define "iotedge-operator.admissionPolicySpec" -}}
failurePolicy: Fail
matchConstraints:
  resourceRules:
    - apiGroups: [""]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [pods, services, configmaps, secrets, serviceaccounts, persistentvolumeclaims]
    - apiGroups: [apps]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [deployments]
    - apiGroups: [networking.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [networkpolicies]
    - apiGroups: [""]
      apiVersions: ["*"]
      operations: [UPDATE]
      resources: [namespaces]
matchConditions:
  - name: the-operator
    expression: {{ printf "request.userInfo.username == '%s'" .user | quote }}
variables:
  - name: isNamespace
    expression: "request.resource.resource == 'namespaces'"
  - name: newLabels
    expression: "object == null ? {} : object.metadata.?labels.orValue({})"
  - name: oldLabels
    expression: "oldObject == null ? {} : oldObject.metadata.?labels.orValue({})"
  - name: podSecurityLabels
    expression: "['pod-security.kubernetes.io/enforce', 'pod-security.kubernetes.io/enforce-version']"
  - name: podSpec
    expression: >-
      request.operation == 'DELETE' ? null
      : request.resource.resource == 'pods' ? object.spec
      : request.resource.resource == 'deployments' ? object.spec.template.spec
      : null
validations:
  - expression: "variables.isNamespace || request.operation == 'DELETE' || variables.newLabels[?'app.kubernetes.io/managed-by'] == optional.of('iotedge-operator')"
    messageExpression: "'iotedge-operator writes only objects labelled app.kubernetes.io/managed-by=iotedge-operator; ' + request.resource.resource + ' ' + request.namespace + '/' + request.name + ' is not'"
    reason: Forbidden
  - expression: "variables.isNamespace || request.operation == 'CREATE' || variables.oldLabels[?'app.kubernetes.io/managed-by'] == optional.of('iotedge-operator')"
    messageExpression: "'iotedge-operator changes or deletes only objects labelled app.kubernetes.io/managed-by=iotedge-operator; ' + request.resource.resource + ' ' + request.namespace + '/' + request.name + ' is not'"
    reason: Forbidden
  - expression: >-
      !variables.isNamespace || (
      variables.newLabels.all(k, k in variables.podSecurityLabels || (k in variables.oldLabels && variables.oldLabels[k] == variables.newLabels[k]))
      && variables.oldLabels.all(k, k in variables.podSecurityLabels || k in variables.newLabels)
      && object.metadata.?annotations.orValue({}) == oldObject.metadata.?annotations.orValue({})
      && object.spec == oldObject.spec)
    messageExpression: "'iotedge-operator changes nothing of a Namespace but its labels pod-security.kubernetes.io/enforce and enforce-version; namespace ' + request.name"
    reason: Forbidden
  - expression: >-
      variables.podSpec == null || [variables.podSpec.?serviceAccountName.orValue(''), variables.podSpec.?serviceAccount.orValue('')].all(sa,
      'system:serviceaccount:' + request.namespace + ':' + sa != request.userInfo.username)
    messageExpression: "'iotedge-operator does not run pods as its own ServiceAccount; ' + request.resource.resource + ' ' + request.namespace + '/' + request.name"
    reason: Forbidden
{{- end }}
