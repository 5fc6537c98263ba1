#!/usr/bin/env bash
# End-to-end check of the test control plane with the built tools: start it in a private run dir,
#   kubectl get ns; server-side apply of the Strimzi and Prometheus Operator CRDs (read from
#   ../shared/crds), wait for Established; kubectl apply --dry-run=server of a valid and an invalid
#   KafkaTopic; RBAC through impersonation (kubectl auth can-i --as a ServiceAccount) and a real
#   ServiceAccount token; helm template + helm install (no --wait) of a throwaway chart in /tmp;
# then stop it and check that no process of it is left. Ends with "N passed, N failed".
# Needs build-tools.sh to have run. CRD dir: $ORDERSAGA_CRDS_DIR (default: <repo>/../shared/crds).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
CRDS="${ORDERSAGA_CRDS_DIR:-$(cd "$here/../../.." && pwd)/shared/crds}"
[ -d "$CRDS/strimzi-1.2.0" ] || { echo "no CRDs in $CRDS" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ordersaga-k8s-smoke-XXXXXX")"
export ORDERSAGA_K8S_RUN_DIR="$WORK/run"
# shellcheck source=checks.sh
source "$here/checks.sh"
cleanup() {
  "$here/control-plane.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

t0=$(date +%s)
line="$("$here/control-plane.sh" start)" || { ko "control plane start"; echo "$fail failed"; exit 1; }
ok "control plane started in $(($(date +%s) - t0))s ($line)"
# shellcheck disable=SC1091
source "$ORDERSAGA_K8S_RUN_DIR/env.sh"   # KUBECONFIG, KUBECACHEDIR, HELM_*_HOME, PATH
if [ "$line" = "KUBECONFIG=$KUBECONFIG" ]; then ok "start printed only the KUBECONFIG line"; else ko "start printed: $line"; fi

check "kubectl get ns" kubectl get ns default kube-system
check "server version is v$K8S_VERSION" bash -c "kubectl version -o json | grep -q '\"gitVersion\": \"v$K8S_VERSION\"'"
check "server-side apply of the Strimzi and Prometheus Operator CRDs" \
  kubectl apply --server-side -f "$CRDS/strimzi-1.2.0/" -f "$CRDS/prometheus-operator/"
# kubectl wait errors out (instead of waiting) while a new CRD has no status.conditions yet.
established() {
  local i
  for ((i = 0; i < 60; i++)); do
    kubectl wait --for=condition=Established --timeout=30s crd --all >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  kubectl wait --for=condition=Established --timeout=1s crd --all
}
check "CRDs Established" established

cat >"$WORK/topic.yaml" <<'EOF'
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata: {name: orders, namespace: default, labels: {strimzi.io/cluster: ordersaga}}
spec: {partitions: 3, replicas: 1, config: {retention.ms: 604800000}}
EOF
cat >"$WORK/topic-bad.yaml" <<'EOF'
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata: {name: orders-bad, namespace: default}
spec: {partitions: 0, replicas: "one"}
EOF
check "dry-run=server accepts a valid KafkaTopic" kubectl apply --dry-run=server -f "$WORK/topic.yaml"
check_fails "dry-run=server rejects an invalid KafkaTopic" 'spec.partitions.*greater than or equal to 1' \
  kubectl apply --dry-run=server -f "$WORK/topic-bad.yaml"
check_fails "dry-run created nothing" 'NotFound' kubectl get kafkatopic orders -n default

sa=system:serviceaccount:smoke:reader
kubectl create namespace smoke >/dev/null && kubectl -n smoke create serviceaccount reader >/dev/null
check_fails "RBAC: ServiceAccount without a binding cannot list kafkatopics" '^no' \
  kubectl auth can-i list kafkatopics.kafka.strimzi.io -n smoke --as="$sa"
kubectl -n smoke create role topic-reader --verb=get,list,watch --resource=kafkatopics.kafka.strimzi.io >/dev/null
kubectl -n smoke create rolebinding topic-reader --role=topic-reader --serviceaccount=smoke:reader >/dev/null
check "RBAC: after a RoleBinding it can list kafkatopics" \
  kubectl auth can-i list kafkatopics.kafka.strimzi.io -n smoke --as="$sa"
check_fails "RBAC: but cannot delete them" '^no' \
  kubectl auth can-i delete kafkatopics.kafka.strimzi.io -n smoke --as="$sa"
check_fails "RBAC: nor list pods (real request, impersonated)" 'Forbidden' kubectl get pods -n smoke --as="$sa"
token="$(kubectl -n smoke create token reader 2>&1)"
check "a ServiceAccount token (TokenRequest) authenticates" \
  kubectl --token="$token" --kubeconfig=/dev/null --server="$(sed -n 's/^server=//p' "$ORDERSAGA_K8S_RUN_DIR/ports")" \
  --certificate-authority="$ORDERSAGA_K8S_RUN_DIR/pki/ca.crt" get kafkatopics -n smoke

chart="$WORK/tinychart"
mkdir -p "$chart/templates"
printf 'apiVersion: v2\nname: tinychart\nversion: 0.1.0\nkubeVersion: ">=1.31.0-0"\n' >"$chart/Chart.yaml"
printf 'partitions: 3\n' >"$chart/values.yaml"
cat >"$chart/templates/all.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-info}
data: {kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: tiny}}
  template:
    metadata: {labels: {app: tiny}}
    spec: {containers: [{name: app, image: registry.invalid/tiny:1}]}
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata: {name: {{ .Release.Name }}-topic, labels: {strimzi.io/cluster: ordersaga}}
spec: {partitions: {{ .Values.partitions }}, replicas: 1}
EOF
kminor="${K8S_VERSION#*.}"; kminor="${kminor%%.*}"
check "helm template (offline) assumes Kubernetes v1.$kminor" \
  bash -c "helm template demo '$chart' | grep -q 'kubeVersion: \"v1.$kminor.0\"'"
check_fails "helm template | kubectl apply --dry-run=server rejects bad values" 'spec.partitions' \
  bash -c "helm template demo '$chart' -n smoke --set partitions=0 | kubectl apply -n smoke --dry-run=server -f -"
check "helm install (no --wait)" helm install demo "$chart" -n smoke
check "helm release deployed" bash -c "helm status demo -n smoke | grep -q 'STATUS: deployed'"
check "release objects exist" kubectl -n smoke get deployment/demo-app configmap/demo-info kafkatopic/demo-topic
check "helm uninstall" helm uninstall demo -n smoke

pids="$(cat "$ORDERSAGA_K8S_RUN_DIR"/*.pid 2>/dev/null | tr '\n' ' ')"
check "control plane stop" "$here/control-plane.sh" stop
left=""
for p in $pids; do
  st="$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" || continue
  [ "$st" = Z ] || left+="$p "
done
if [ -z "$left" ]; then ok "no process left (pids were $pids)"; else ko "processes left: $left"; fi

summary
