#!/usr/bin/env bash
# Checks skaffold.yaml with the real skaffold and helm, offline: no cluster, no Docker, nothing is
# built, pushed or deployed.
#   - skaffold fix: the file is at the newest schema version this skaffold reads;
#   - skaffold diagnose --yaml-only, with no profile and with -p kind / -p minikube: the file parses
#     (unknown fields are errors) and validates, and the profiles apply;
#   - skaffold render --digest-source=tag --offline=true, per profile (the README's offline commands,
#     which readme.test.ts runs as written): helm template of charts/ordersaga
#     with the values skaffold sets. The result is checked against skaffold.yaml: each artifact's
#     image is the image of one Deployment (tag from skaffold, no stray "@"); its PORT build arg is
#     that container's port; its WORKSPACE a workspace of package.json with a src/main.ts; the local
#     profiles set their kubeContext, push nothing, add the dev Kafka and no ServiceMonitor.
# Builds skaffold and helm first if they are not in the cache (build-tools.sh skaffold helm).
# Needs node_modules (npm ci): the manifests are read with the `yaml` package. Ends with
# "N passed, N failed".
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

"$here/build-tools.sh" skaffold helm >/dev/null || { echo "build-tools.sh skaffold helm failed" >&2; exit 1; }
[ -f "$root/node_modules/yaml/package.json" ] || { echo "no node_modules/yaml: run npm ci first" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ordersaga-skaffold-check-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# skaffold keeps a global config and a cache under $HOME/.skaffold: give it a throwaway HOME, with
# telemetry and the update check off (no network here). No KUBECONFIG: no context, no activation.
mkdir -p "$WORK/home/.skaffold"
printf 'global:\n  collect-metrics: false\n  update:\n    check: false\n  survey:\n    disable-prompt: true\n' \
  >"$WORK/home/.skaffold/config"
skaffold() {
  (cd "$root" && env HOME="$WORK/home" KUBECONFIG="$WORK/no-kubeconfig" \
    HELM_CONFIG_HOME="$WORK/helm/config" HELM_CACHE_HOME="$WORK/helm/cache" HELM_DATA_HOME="$WORK/helm/data" \
    SKAFFOLD_UPDATE_CHECK=false PATH="$(dirname "$HELM_BIN"):$PATH" "$SKAFFOLD_BIN" "$@")
}

# The rendered manifests against the effective skaffold config (the output of diagnose).
cat >"$WORK/check.cjs" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const [root, profile, configFile, renderFile] = process.argv.slice(2);
const YAML = require(path.join(root, 'node_modules', 'yaml'));
const config = YAML.parse(fs.readFileSync(configFile, 'utf8'));
const docs = YAML.parseAllDocuments(fs.readFileSync(renderFile, 'utf8')).map((d) => d.toJS()).filter(Boolean);
const errors = [];
const count = (kind) => docs.filter((d) => d.kind === kind).length;
const containers = docs
  .filter((d) => d.kind === 'Deployment')
  .flatMap((d) => d.spec.template.spec.containers.map((c) => ({ deployment: d.metadata.name, ...c })));
const artifacts = config.build.artifacts;
if (containers.length !== artifacts.length) errors.push(`${containers.length} containers for ${artifacts.length} artifacts`);
for (const a of artifacts) {
  const { WORKSPACE: ws, PORT: port } = a.docker?.buildArgs ?? {};
  if (a.docker?.dockerfile !== 'Dockerfile') errors.push(`${a.image}: not built with the root Dockerfile`);
  if (!fs.existsSync(path.join(root, ws ?? '', 'package.json')) || !fs.existsSync(path.join(root, ws ?? '', 'src', 'main.ts'))) {
    errors.push(`${a.image}: WORKSPACE "${ws}" is not a workspace with a src/main.ts`);
  }
  const using = containers.filter((c) => c.image.split(':')[0] === a.image);
  if (using.length !== 1) { errors.push(`${a.image}: used by ${using.length} containers, expected 1`); continue; }
  const c = using[0];
  if (!/^[^:@]+:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(c.image)) errors.push(`${c.deployment}: image "${c.image}" is not repo:tag`);
  const ports = (c.ports ?? []).map((p) => String(p.containerPort));
  if (!ports.includes(String(port))) errors.push(`${a.image}: PORT ${port}, but ${c.deployment} listens on ${ports.join(', ')}`);
  const env = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === c.deployment)?.data ?? {};
  if (env.PORT !== undefined && env.PORT !== String(port)) errors.push(`${a.image}: PORT ${port}, ConfigMap PORT ${env.PORT}`);
}
const local = profile !== '';
const want = local
  ? { push: false, kubeContext: profile === 'kind' ? 'kind-ordersaga' : 'minikube', Kafka: 1, ServiceMonitor: 0 }
  : { push: undefined, kubeContext: undefined, Kafka: 0, ServiceMonitor: artifacts.length };
if (config.build.local?.push !== want.push) errors.push(`build.local.push is ${config.build.local?.push}, expected ${want.push}`);
if (config.deploy?.kubeContext !== want.kubeContext) errors.push(`deploy.kubeContext is ${config.deploy?.kubeContext}, expected ${want.kubeContext}`);
for (const kind of ['Kafka', 'ServiceMonitor']) {
  if (count(kind) !== want[kind]) errors.push(`${count(kind)} ${kind} objects, expected ${want[kind]}`);
}
if (errors.length > 0) { console.error(errors.join('\n')); process.exit(1); }
console.log(`${artifacts.length} images, ${docs.length} objects`);
JS

# shellcheck source=checks.sh
source "$here/checks.sh"

echo "skaffold $("$SKAFFOLD_BIN" version), helm $("$HELM_BIN" version --short)"
latest="$("$SKAFFOLD_BIN" schema list | tail -n 1)"
check "skaffold.yaml is at $latest, the newest version skaffold v$SKAFFOLD_VERSION reads" \
  grep -qx "apiVersion: $latest" "$root/skaffold.yaml"
nothing_to_fix() {
  local out; out="$(skaffold fix --overwrite=false 2>&1)" || { echo "$out"; return 1; }
  grep -qix "config is already version $latest" <<<"$out" || { echo "$out"; return 1; }
}
check "skaffold fix: nothing to upgrade" nothing_to_fix

for profile in "" kind minikube; do
  name="${profile:-no profile}"
  args=(); [ -n "$profile" ] && args=(-p "$profile")
  if skaffold diagnose --yaml-only "${args[@]}" >"$WORK/config-$name.yaml" 2>"$WORK/err"; then
    ok "diagnose --yaml-only ($name)"
  else
    ko "diagnose --yaml-only ($name)"; indent "$(cat "$WORK/err")"; continue
  fi
  if skaffold render --digest-source=tag --offline=true "${args[@]}" >"$WORK/render-$name.yaml" 2>"$WORK/err"; then
    ok "render: helm template of charts/ordersaga ($name)"
  else
    ko "render ($name)"; indent "$(cat "$WORK/err")"; continue
  fi
  check "rendered manifests agree with skaffold.yaml ($name)" \
    node "$WORK/check.cjs" "$root" "$profile" "$WORK/config-$name.yaml" "$WORK/render-$name.yaml"
done

summary
