{{/* Name of every object of the release. */}}
{{- define "venta-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "venta-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "venta-operator.labels" -}}
{{ include "venta-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: venta
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The namespaces a namespaced-mode operator watches. */}}
{{- define "venta-operator.namespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- join "," .Values.watch.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* What the operator may do: read and patch its resource, manage every child kind, post Events. */}}
{{- define "venta-operator.rules" -}}
- apiGroups: ["venta.io"]
  resources: ["ventaplatforms"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["venta.io"]
  resources: ["ventaplatforms/status"]
  verbs: ["get", "patch"]
- apiGroups: ["venta.io"]
  # Needed to set blockOwnerDeletion on the owner references of children.
  resources: ["ventaplatforms/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: [""]
  # Generated credentials are created once and never patched; referenced ones are only read.
  resources: ["secrets"]
  verbs: ["get", "list", "create", "delete"]
- apiGroups: ["apps"]
  # Watched as well: a change of their readiness wakes their platform's loop (venta_operator.wakeups).
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies", "ingresses"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  # spec.ingress.gatewayRef: the HTTPRoute to the platform (when the Gateway API CRDs are there).
  resources: ["httproutes"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["cert-manager.io"]
  # spec.ingress.tls.certManager: the host's Certificate (when cert-manager is there).
  resources: ["certificates"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "prometheusrules"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["postgresql.cnpg.io"]
  # spec.postgres.cloudNativePG: the CloudNativePG Cluster the operator creates and reads (when CloudNativePG is there).
  resources: ["clusters"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The log collector's pods (templates/log-collector.yaml): their own name, so no selector of the operator's
matches them. */}}
{{- define "venta-operator.collectorSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-log-collector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: log-collector
{{- end -}}

{{- define "venta-operator.collectorLabels" -}}
{{ include "venta-operator.collectorSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.logs.collector.image.tag | quote }}
app.kubernetes.io/part-of: venta
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
