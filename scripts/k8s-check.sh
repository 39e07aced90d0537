#!/usr/bin/env bash
# Offline validation of deploy/ (`make k8s-check`, part of `make lint`): every Kubernetes
# manifest against the Kubernetes OpenAPI schemas bundled in kubernetes-validate (PyPI), in
# strict mode (unknown fields fail); then the monitoring files, which no bundled schema covers
# (the PrometheusRule is a Prometheus Operator CRD; the Grafana dashboard is not Kubernetes at
# all), by scripts/monitoring-check.py: their structure, and every metric and label they name
# against the metrics the code exports. kubernetes-validate lives in the repo's .venv (gitignored),
# installed on first use like schemathesis (scripts/api-check.sh); K8S_VERSION picks the
# schema version (default 1.32: the preStop `sleep` action is on by default since 1.30).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
fail() {
    echo "k8s-check: FAILED: $*" >&2
    exit 1
}
if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
    echo "k8s-check: installing kubernetes-validate into $VENV"
    [[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV" || fail "python3 -m venv failed (install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${K8S_CHECK_VALIDATE:-kubernetes-validate}"
fi
# A kustomization is kustomize's own file, not an API object: the rest is what each lists
# (the split layout, the all-in-one, and the base the two share).
files=()
for dir in deploy/kubernetes deploy/kubernetes/base deploy/kubernetes/all-in-one; do
    mapfile -t listed < <(sed -n "s|^  - \(.*\.yaml\)$|$dir/\1|p" "$dir/kustomization.yaml")
    files+=("${listed[@]}")
done
[[ ${#files[@]} -ge 7 ]] || fail "the kustomizations list ${#files[@]} manifests"
"$VENV/bin/kubernetes-validate" --strict -k "${K8S_VERSION:-1.32.0}" "${files[@]}" || fail "invalid manifests"
for f in "${files[@]}"; do
    grep -q "kind: Deployment" "$f" || continue
    for need in readinessProbe livenessProbe preStop "requests:" "replicas:" configMapRef secretRef; do
        grep -q "$need" "$f" || fail "$f has no $need"
    done
done
# The PrometheusRule's kustomization (deploy/kubernetes/monitoring) is left out above: its one
# object is a CRD the schemas do not know.
"$VENV/bin/python" "$ROOT/scripts/monitoring-check.py" || fail "monitoring files (deploy/kubernetes/monitoring, deploy/grafana)"
echo "k8s-check: ${#files[@]} manifests valid"
