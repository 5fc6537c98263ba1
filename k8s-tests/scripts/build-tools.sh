#!/usr/bin/env bash
# Builds the real Kubernetes test tools, once per version, into
#   ${ORDERSAGA_CACHE:-$HOME/.cache/ordersaga}/k8s-tools/<tool>-v<version>/<tool>
#
#   kube-apiserver, kubectl  k8s.io/kubernetes      (Go module proxy, helper module, see below)
#   etcd                     go.etcd.io/etcd/server/v3 (Go module proxy, helper module; NOT Debian's etcd-server)
#   helm                     helm.sh/helm/v3/cmd/helm  (go install)
#   skaffold                 github.com/GoogleContainerTools/skaffold/v2 (helper module; only on request)
#   otelcol                  an OpenTelemetry Collector: go.opentelemetry.io/collector/otelcol with the
#                            OTLP receiver and contrib's file exporter (helper module; only on request)
#
# Usage: build-tools.sh [kubernetes|etcd|helm|skaffold|otelcol]...   (no argument: kubernetes etcd
# helm; skaffold, which checks skaffold.yaml, and otelcol, which receives the services' traces in
# tests/tracing.test.ts, are built only when named)
#
# No internet is needed beyond the Go module proxy. Everything Go downloads or compiles is kept
# in the same cache (GOMODCACHE/GOCACHE under k8s-tools/), so a fresh checkout rebuilds nothing
# and a version bump recompiles only what changed. A tool directory appears only when its build
# succeeded (built in a temp dir, then renamed). Versions: versions.env beside this script.
#
# Progress goes to stderr; stdout gets one line per tool at the end: "<tool> <version> <path>".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

log() { printf '[build-tools] %s\n' "$*" >&2; }
die() { printf '[build-tools] ERROR: %s\n' "$*" >&2; exit 1; }
secs() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

command -v go >/dev/null 2>&1 || die "'go' not found on PATH (Go >= 1.26 is needed)"
command -v flock >/dev/null 2>&1 || die "'flock' not found (util-linux)"

mkdir -p "$K8S_TOOLS_DIR"
K8S_TOOLS_DIR="$(cd "$K8S_TOOLS_DIR" && pwd)"

# One build at a time per cache (parallel CI jobs / two terminals).
exec 9>"$K8S_TOOLS_DIR/.build.lock"
if ! flock -n 9; then
  log "another build-tools.sh is running on $K8S_TOOLS_DIR; waiting for it..."
  flock 9
fi

# Go environment: everything inside the cache; never switch toolchains (no downloads of Go itself).
export GOPATH="$K8S_TOOLS_DIR/.gopath"
export GOMODCACHE="$GOPATH/pkg/mod"
export GOCACHE="$K8S_TOOLS_DIR/.gocache"
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=
unset GOOS GOARCH GOBIN

# Temp dirs of an interrupted run are garbage (we hold the lock).
rm -rf "$K8S_TOOLS_DIR"/.tmp-* 2>/dev/null || true
cleanup() { rm -rf "$K8S_TOOLS_DIR"/.tmp-* 2>/dev/null || true; }
trap cleanup EXIT
newtmp() { mktemp -d "$K8S_TOOLS_DIR/.tmp-$1-XXXXXX"; }
# The "go" line of a go.mod: the helper module that builds from it needs the same.
go_line() { awk '$1 == "go" { print $2; exit }' "$1"; }
# A helper Go module for tool $1 at go version $2, in a fresh tmp dir; prints the dir.
helper_module() {
  local dir; dir="$(newtmp "$1-module")"
  (cd "$dir" && go mod init "ordersaga.local/k8s-tools/$1" >/dev/null 2>&1 && go mod edit -go="$2") \
    || die "could not create the helper module for $1"
  printf '%s\n' "$dir"
}

# go mod download -json <mod@ver> | field <Name>
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1; }

# download MOD@VER: go mod download -json, dies with Go's error message on failure
download() {
  local json
  json="$(go mod download -json "$1" 2>&1)" && { echo "$json"; return 0; }
  die "cannot download $1 from the Go module proxy: $(field Error <<<"$json")${json:+ }$(grep -v '^[[:space:]]*[{}"]' <<<"$json")"
}

# Moves a finished build dir into place: the final dir exists only when complete.
install_dir() { # tmpdir finaldir
  chmod 755 "$1"   # mktemp -d made it 0700
  rm -rf "$2"
  mv -T "$1" "$2"
}

# quiet CMD...: run CMD, show its output only if it fails (go get prints a line per module)
quiet() {
  local out
  out="$("$@" 2>&1)" && return 0
  printf '%s\n' "$out" >&2
  return 1
}

# check_output LINE CMD...: CMD runs and prints LINE as one of its lines (not through a pipe
# into grep -q, which can kill CMD with SIGPIPE under pipefail).
check_output() {
  local want="$1" got; shift
  got="$("$@" 2>&1)" || die "'$*' failed: $got"
  grep -qxF -- "$want" <<<"$got" || die "'$*' printed '$got', expected a line '$want'"
}

log "cache: $K8S_TOOLS_DIR ($(go version | cut -d' ' -f3-), $(nproc) CPUs)"

############################################################################ kubernetes
build_kubernetes() {
  local v="$K8S_VERSION" major minor
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  local api_dir="$K8S_TOOLS_DIR/kube-apiserver-v$v" ctl_dir="$K8S_TOOLS_DIR/kubectl-v$v"
  if [ -x "$api_dir/kube-apiserver" ] && [ -x "$ctl_dir/kubectl" ]; then
    log "kube-apiserver/kubectl v$v: already built, skipping"
    return
  fi

  log "kubernetes v$v: downloading k8s.io/kubernetes@v$v and its dependencies (module proxy)..."
  local json gomod info t0; t0=$(date +%s)
  json="$(download "k8s.io/kubernetes@v$v")" || exit 1
  gomod="$(field GoMod <<<"$json")"; info="$(field Info <<<"$json")"
  [ -f "$gomod" ] || die "no go.mod for k8s.io/kubernetes@v$v"

  # The staging modules (k8s.io/api, k8s.io/client-go, ...) appear as v0.0.0 in kubernetes' go.mod
  # with "=> ./staging/src/..." replaces, which do not apply outside that repository; each is
  # published separately as v0.<minor>.<patch>.
  local staging goline godebugs
  staging="$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$gomod" | sort -u)"
  [ -n "$staging" ] || die "found no k8s.io/* v0.0.0 staging modules in $gomod"
  goline="$(go_line "$gomod")"
  # "godebug default=go1.24" (single line or block): keep the GODEBUG defaults Kubernetes ships with.
  godebugs="$(awk '/^godebug \(/ {b=1; next} b && /^\)/ {b=0} b {print $1} /^godebug [^(]/ {print $2}' "$gomod")"

  local mod; mod="$(helper_module kubernetes "$goline")"
  (
    cd "$mod"
    local m d
    for m in $staging; do go mod edit -replace="$m=$m@v0.${v#*.}"; done
    for d in $godebugs; do go mod edit -godebug="$d"; done
    # Resolves kubernetes and the modules its packages import (downloads them), writes go.sum.
    quiet go get "k8s.io/kubernetes/cmd/kube-apiserver@v$v" "k8s.io/kubernetes/cmd/kubectl@v$v"
  ) || die "could not set up the helper module for k8s.io/kubernetes@v$v (see above)"
  log "kubernetes v$v: helper module ready in $(secs $(($(date +%s) - t0))): go $goline, $(wc -w <<<"$staging") staging modules replaced by v0.${v#*.}"

  # Same version stamping as hack/lib/version.sh, so `kubectl version` / `/version` report v$v.
  local date ldflags="-s -w" p
  date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null)"
  [ -n "$date" ] || date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  date="${date%%.*}"; date="${date%Z}Z"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $p.gitVersion=v$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  # Tags as in hack/lib/golang.sh for release (non-debug) builds.
  local tags="selinux,notest,grpcnotrace"

  local t out tool
  for tool in kube-apiserver kubectl; do
    local final="$K8S_TOOLS_DIR/$tool-v$v"
    if [ -x "$final/$tool" ]; then log "$tool v$v: already built, skipping"; continue; fi
    out="$(newtmp "$tool")"
    log "$tool v$v: building (CGO_ENABLED=0, -trimpath; the first build takes many minutes on 2 cores)..."
    t0=$(date +%s)
    (cd "$mod" && go build -mod=mod -trimpath -tags "$tags" -ldflags "$ldflags" \
        -o "$out/$tool" "k8s.io/kubernetes/cmd/$tool") || die "go build of $tool v$v failed"
    t=$(( $(date +%s) - t0 ))
    case "$tool" in
      kube-apiserver) check_output "Kubernetes v$v" "$out/$tool" --version ;;
      kubectl) check_output "Client Version: v$v" "$out/$tool" version --client ;;
    esac
    install_dir "$out" "$final"
    log "$tool v$v: built in $(secs "$t") -> $final/$tool"
  done
}

############################################################################ etcd
build_etcd() {
  local v="$ETCD_VERSION" final="$K8S_TOOLS_DIR/etcd-v$ETCD_VERSION"
  if [ -x "$final/etcd" ]; then log "etcd v$v: already built, skipping"; return; fi

  log "etcd v$v: downloading go.etcd.io/etcd/server/v3@v$v and its dependencies (module proxy)..."
  local json gomod goline t0; t0=$(date +%s)
  json="$(download "go.etcd.io/etcd/server/v3@v$v")" || exit 1
  gomod="$(field GoMod <<<"$json")"
  [ -f "$gomod" ] || die "no go.mod for go.etcd.io/etcd/server/v3@v$v"
  goline="$(go_line "$gomod")"
  # Its go.mod replaces the sibling modules of the etcd repo with relative paths (../api, ...);
  # pin each to the same released version instead. (=> ./FORBIDDEN_DEPENDENCY lines are guards.)
  local siblings
  siblings="$(sed -e 's/^replace[[:space:]]*//' "$gomod" | awk '$2 == "=>" && $3 ~ /^\.\.?\// && $3 !~ /FORBIDDEN/ { print $1 }' | sort -u)"
  log "etcd v$v: relative replaces pinned to v$v: $(tr '\n' ' ' <<<"$siblings")"

  local mod; mod="$(helper_module etcd "$goline")"
  (
    cd "$mod"
    local m
    for m in $siblings; do go mod edit -replace="$m=$m@v$v"; done
    quiet go get "go.etcd.io/etcd/server/v3@v$v"
  ) || die "could not set up the helper module for etcd v$v (see above)"
  log "etcd v$v: helper module ready in $(secs $(($(date +%s) - t0)))"

  local out t; out="$(newtmp etcd)"
  log "etcd v$v: building..."
  t0=$(date +%s)
  (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3) \
    || die "go build of etcd v$v failed"
  t=$(( $(date +%s) - t0 ))
  check_output "etcd Version: $v" "$out/etcd" --version
  install_dir "$out" "$final"
  log "etcd v$v: built in $(secs "$t") -> $final/etcd"
}

############################################################################ helm
build_helm() {
  local v="$HELM_VERSION" final="$K8S_TOOLS_DIR/helm-v$HELM_VERSION"
  if [ -x "$final/helm" ]; then log "helm v$v: already built, skipping"; return; fi
  local kmajor="${K8S_VERSION%%.*}" kminor="${K8S_VERSION#*.}"; kminor="${kminor%%.*}"

  log "helm v$v: downloading helm.sh/helm/v3@v$v (module proxy)..."
  local json dir
  json="$(download "helm.sh/helm/v3@v$v")" || exit 1
  dir="$(field Dir <<<"$json")"
  # -X on a variable that does not exist is silently ignored: check the names first.
  local f var
  for f in pkg/chartutil/capabilities.go pkg/lint/rules/deprecations.go; do
    for var in k8sVersionMajor k8sVersionMinor; do
      grep -q "^[[:space:]]*${var}[[:space:]]*=" "$dir/$f" || die "helm v$v: no variable $var in $f (ldflags need updating)"
    done
  done
  grep -q '^[[:space:]]*version[[:space:]]*=' "$dir/internal/version/version.go" || die "helm v$v: no internal/version.version"

  # As helm's Makefile does, but with the Kubernetes version we test against (default: 1.20).
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local p
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $p.k8sVersionMajor=$kmajor -X $p.k8sVersionMinor=$kminor"
  done

  local out t0 t; out="$(newtmp helm)"
  log "helm v$v: downloading dependencies and building (default kube version v$kmajor.$kminor.0)..."
  t0=$(date +%s)
  GOBIN="$out" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@v$v" || die "go install of helm v$v failed"
  t=$(( $(date +%s) - t0 ))
  check_output "v$v" "$out/helm" version --short
  install_dir "$out" "$final"
  log "helm v$v: built in $(secs "$t") -> $final/helm"
}

############################################################################ skaffold
build_skaffold() {
  local v="$SKAFFOLD_VERSION" final="$K8S_TOOLS_DIR/skaffold-v$SKAFFOLD_VERSION"
  local m=github.com/GoogleContainerTools/skaffold/v2
  if [ -x "$final/skaffold" ]; then log "skaffold v$v: already built, skipping"; return; fi

  # sum.golang.org has no record of skaffold v2.19.0 (404), which makes every go command refuse
  # it; skip the checksum database for this one module and check the pinned go.sum hashes instead.
  export GONOSUMDB=github.com/GoogleContainerTools/skaffold
  log "skaffold v$v: downloading $m@v$v (module proxy)..."
  local json gomod info dir goline t0; t0=$(date +%s)
  json="$(download "$m@v$v")" || exit 1
  gomod="$(field GoMod <<<"$json")"; info="$(field Info <<<"$json")"; dir="$(field Dir <<<"$json")"
  [ -f "$gomod" ] || die "no go.mod for $m@v$v"
  local sum modsum; sum="$(field Sum <<<"$json")"; modsum="$(field GoModSum <<<"$json")"
  if [ -n "$SKAFFOLD_SUM$SKAFFOLD_MOD_SUM" ]; then
    if [ "$sum" != "$SKAFFOLD_SUM" ] || [ "$modsum" != "$SKAFFOLD_MOD_SUM" ]; then
      die "skaffold v$v: the proxy's hashes ($sum $modsum) are not SKAFFOLD_SUM/SKAFFOLD_MOD_SUM ($SKAFFOLD_SUM $SKAFFOLD_MOD_SUM): see versions.env"
    fi
  else
    log "skaffold v$v: SKAFFOLD_SUM/SKAFFOLD_MOD_SUM empty: taking the proxy's $sum $modsum"
  fi
  grep -q '"skaffold/v4beta[0-9]*"' "$dir/pkg/skaffold/schema/latest/config.go" \
    || die "skaffold v$v: no schema version in pkg/skaffold/schema/latest/config.go"
  goline="$(go_line "$gomod")"
  # Its go.mod pins modules with replace/exclude directives (k8s.io/* v0.33, buildpacks, ...); they
  # apply only in the main module, so `go install ...@v$v` refuses it: a helper module copies them.
  # (Only module@version replaces: a relative one would not resolve outside skaffold's repository.)
  local replaces excludes
  replaces="$(sed -n 's/^replace[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]*=>[[:space:]]*\([^.[:space:]][^[:space:]]*\)[[:space:]]\{1,\}\(v[^[:space:]]*\)[[:space:]]*$/\1=\2@\3/p' "$gomod")"
  excludes="$(sed -n 's/^exclude[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]\{1,\}\(v[^[:space:]]*\)[[:space:]]*$/\1@\2/p' "$gomod")"
  [ "$(grep -c '=>' "$gomod")" -eq "$(wc -l <<<"$replaces")" ] \
    || die "skaffold v$v: go.mod has replaces the script does not understand: $(grep '=>' "$gomod" | tr '\n' ';')"

  local mod; mod="$(helper_module skaffold "$goline")"
  (
    cd "$mod"
    local r
    for r in $replaces; do go mod edit -replace="$r"; done
    for r in $excludes; do go mod edit -exclude="$r"; done
    if [ -n "$SKAFFOLD_SUM" ]; then
      printf '%s %s %s\n%s %s/go.mod %s\n' "$m" "v$v" "$SKAFFOLD_SUM" "$m" "v$v" "$SKAFFOLD_MOD_SUM" >go.sum
    fi
    quiet go get "$m/cmd/skaffold@v$v"
  ) || die "could not set up the helper module for skaffold v$v (see above)"
  log "skaffold v$v: helper module ready in $(secs $(($(date +%s) - t0))): go $goline, $(wc -l <<<"$replaces") replaces, $(wc -l <<<"$excludes") excludes"

  # As skaffold's Makefile does for a Linux release (less cgo): version, date and commit stamped.
  local commit date ldflags p=$m/pkg/skaffold/version
  commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info")"
  date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")"
  ldflags="-s -w -X $p.version=v$v -X $p.buildDate=${date:-unknown} -X $p.gitCommit=${commit:-unknown}"

  local out t; out="$(newtmp skaffold)"
  log "skaffold v$v: building..."
  t0=$(date +%s)
  (cd "$mod" && go build -mod=mod -trimpath -tags "timetzdata,osusergo,netgo,release" -ldflags "$ldflags" \
      -o "$out/skaffold" "$m/cmd/skaffold") || die "go build of skaffold v$v failed"
  t=$(( $(date +%s) - t0 ))
  check_output "v$v" "$out/skaffold" version
  install_dir "$out" "$final"
  log "skaffold v$v: built in $(secs "$t") -> $final/skaffold"
}

############################################################################ otelcol
# The collector, as the collector builder (ocb) would generate it, with only what the tests use:
# the OTLP receiver, the batch processor and the file exporter (OTLP JSON, one request a line).
# The contrib modules are released with the core 0.x modules of the same version; the core 1.x
# modules (confmap providers) in the version otelcol@v$OTELCOL_VERSION itself requires.
# First build on 2 cores: 2 minutes from empty caches (downloads included), 1 minute after the
# Kubernetes tools (gRPC, protobuf and the like already compiled in the shared GOCACHE).
build_otelcol() {
  local v="$OTELCOL_VERSION" final="$K8S_TOOLS_DIR/otelcol-v$OTELCOL_VERSION"
  local core=go.opentelemetry.io/collector contrib=github.com/open-telemetry/opentelemetry-collector-contrib
  if [ -x "$final/otelcol" ]; then log "otelcol v$v: already built, skipping"; return; fi

  log "otelcol v$v: downloading $core/otelcol@v$v and the components (module proxy)..."
  local json gomod goline stable t0; t0=$(date +%s)
  json="$(download "$core/otelcol@v$v")" || exit 1
  gomod="$(field GoMod <<<"$json")"
  [ -f "$gomod" ] || die "no go.mod for $core/otelcol@v$v"
  goline="$(go_line "$gomod")"
  stable="$(awk '$1 == "go.opentelemetry.io/collector/confmap" { print $2; exit }' "$gomod")"
  [ -n "$stable" ] || die "otelcol v$v: its go.mod requires no go.opentelemetry.io/collector/confmap"

  local mod; mod="$(helper_module otelcol "$goline")"
  (
    cd "$mod"
    cat >main.go <<GO
// Program otelcol is an OpenTelemetry Collector for the ordersaga tests, written by
// k8s-tests/scripts/build-tools.sh the way the collector builder (ocb) writes one.
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"$contrib/exporter/fileexporter"
)

func components() (otelcol.Factories, error) {
	factories := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	var err error
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](batchprocessor.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](fileexporter.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](); err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}

func main() {
	settings := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol",
			Description: "OpenTelemetry Collector for the ordersaga tests (OTLP in, OTLP JSON file out)",
			Version:     "$v",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{envprovider.NewFactory(), fileprovider.NewFactory()},
			},
		},
	}
	// cobra has printed the error already.
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		os.Exit(1)
	}
}
GO
    # Resolves every collector module to what these components require (as ocb's go mod tidy
    # does; tidy itself also wants the modules their tests import, and the proxy refuses one:
    # contrib's otlpencodingextension v0.162.0).
    quiet go get "$core/otelcol@v$v" "$core/receiver/otlpreceiver@v$v" "$core/processor/batchprocessor@v$v" \
      "$core/service@v$v" "$contrib/exporter/fileexporter@v$v" \
      "$core/confmap/provider/envprovider@$stable" "$core/confmap/provider/fileprovider@$stable"
  ) || die "could not set up the helper module for otelcol v$v (see above)"
  log "otelcol v$v: helper module ready in $(secs $(($(date +%s) - t0))): go $goline, core v$v and $stable"

  local out t; out="$(newtmp otelcol)"
  log "otelcol v$v: building..."
  t0=$(date +%s)
  (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$out/otelcol" .) || die "go build of otelcol v$v failed"
  t=$(( $(date +%s) - t0 ))
  check_output "otelcol version $v" "$out/otelcol" --version
  install_dir "$out" "$final"
  log "otelcol v$v: built in $(secs "$t") -> $final/otelcol"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kubernetes etcd helm)
for tool in "${tools[@]}"; do
  case "$tool" in
    kubernetes|etcd|helm|skaffold|otelcol) ;;
    *) die "unknown tool '$tool' (kubernetes, etcd, helm, skaffold, otelcol)" ;;
  esac
done

T0=$(date +%s)
for tool in "${tools[@]}"; do "build_$tool"; done
log "done in $(secs $(( $(date +%s) - T0 )))"

for tool in "${tools[@]}"; do
  case "$tool" in
    kubernetes) printf '%-15s v%-8s %s\n' \
      kube-apiserver "$K8S_VERSION" "$K8S_TOOLS_DIR/kube-apiserver-v$K8S_VERSION/kube-apiserver" \
      kubectl "$K8S_VERSION" "$K8S_TOOLS_DIR/kubectl-v$K8S_VERSION/kubectl" ;;
    etcd) printf '%-15s v%-8s %s\n' etcd "$ETCD_VERSION" "$K8S_TOOLS_DIR/etcd-v$ETCD_VERSION/etcd" ;;
    helm) printf '%-15s v%-8s %s\n' helm "$HELM_VERSION" "$K8S_TOOLS_DIR/helm-v$HELM_VERSION/helm" ;;
    skaffold) printf '%-15s v%-8s %s\n' skaffold "$SKAFFOLD_VERSION" "$K8S_TOOLS_DIR/skaffold-v$SKAFFOLD_VERSION/skaffold" ;;
    otelcol) printf '%-15s v%-8s %s\n' otelcol "$OTELCOL_VERSION" "$K8S_TOOLS_DIR/otelcol-v$OTELCOL_VERSION/otelcol" ;;
  esac
done
