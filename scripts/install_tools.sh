#!/usr/bin/env bash
# Install what the deploy tests need, idempotently, on a fresh Debian 12 machine (root, package registries only):
#   promtool + prometheus   Debian's `prometheus` package (rule tests, config checks, the scrape integration test)
#   chromium                Debian's `chromium` package (the report's browser test, driven by Playwright)
#   redis-server            Debian's `redis-server` package (the API's shared rate limits; scripts/services.sh runs it)
#   kubeconform             from the Go module proxy (go install)
#   k8s JSON schemas        generated offline from the PyPI package kubernetes-validate (scripts/k8s_schemas.py)
#   docker compose          the Compose v2 CLI plugin built from the Go module proxy, only if `docker compose` fails
#   toxiproxy-server        Shopify's TCP fault proxy from the Go module proxy (go install), for the -m faults tests
#   vegeta                  the constant-rate HTTP load generator of benchmarks/api.py (go install)
# Everything but the apt package goes to $LEVIBOT_TOOLS (default $LEVIBOT_VAR/tools, i.e. ./var/tools).
# Usage: scripts/install_tools.sh            (the Makefile's `tools` target runs it; it needs .venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${LEVIBOT_VAR:-$ROOT/var}"
TOOLS="${LEVIBOT_TOOLS:-$VAR/tools}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
KUBECONFORM_VERSION="v0.8.0"
VEGETA_VERSION="v12.13.0"
TOXIPROXY_VERSION="v2.5.0"   # the server's package is cmd/server up to v2.5 (cmd/toxiproxy-server later)
K8S_VERSION="${LEVIBOT_K8S_VERSION:-1.34.0}"
export PATH="$PATH:/usr/local/go/bin"
mkdir -p "$TOOLS/bin"

log() { echo "install_tools: $*" >&2; }

# 1. promtool and the Prometheus server from Debian
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  log "installing Debian's prometheus package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$VAR/apt-prometheus.log" 2>&1
  apt-get install -y -q --no-install-recommends prometheus >>"$VAR/apt-prometheus.log" 2>&1 \
    || { tail -20 "$VAR/apt-prometheus.log" >&2; exit 1; }
fi

# 1b. Debian's chromium: the browser the report test drives through Playwright (executable_path; Playwright's own
# browser download is not used)
if ! command -v chromium >/dev/null; then
  log "installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$VAR/apt-chromium.log" 2>&1
  apt-get install -y -q --no-install-recommends chromium >>"$VAR/apt-chromium.log" 2>&1 \
    || { tail -20 "$VAR/apt-chromium.log" >&2; exit 1; }
fi

# 1c. Debian's redis-server: the API replicas' shared rate-limit counters (started by `scripts/services.sh up redis`)
if ! command -v redis-server >/dev/null; then
  log "installing Debian's redis-server package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$VAR/apt-redis.log" 2>&1
  apt-get install -y -q --no-install-recommends redis-server >>"$VAR/apt-redis.log" 2>&1 \
    || { tail -20 "$VAR/apt-redis.log" >&2; exit 1; }
fi

# 2. kubeconform from the Go module proxy
if [[ ! -x "$TOOLS/bin/kubeconform" || ! -f "$TOOLS/bin/.kubeconform-$KUBECONFORM_VERSION" ]]; then
  command -v go >/dev/null || { log "go is required to install kubeconform"; exit 1; }
  log "go install kubeconform $KUBECONFORM_VERSION"
  GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  touch "$TOOLS/bin/.kubeconform-$KUBECONFORM_VERSION"
fi

# 3. Kubernetes JSON schemas, offline (kubeconform would fetch them from GitHub)
SCHEMAS="$TOOLS/k8s-schemas"
if [[ ! -f "$SCHEMAS/.complete-$K8S_VERSION" ]]; then
  log "generating Kubernetes $K8S_VERSION JSON schemas"
  "$PY" -c "import kubernetes_validate" 2>/dev/null || { log "kubernetes-validate missing from $PY (pip install -e '.[test]')"; exit 1; }
  "$PY" "$ROOT/scripts/k8s_schemas.py" "$SCHEMAS" --kubernetes-version "$K8S_VERSION" >&2
  touch "$SCHEMAS/.complete-$K8S_VERSION"
fi

# 4. docker compose (only the `config` subcommand is used; no engine needed)
if ! docker compose version >/dev/null 2>&1 && [[ ! -x "$TOOLS/bin/docker-compose" ]]; then
  command -v go >/dev/null || { log "go is required to build docker compose"; exit 1; }
  log "building the docker compose plugin from the Go module proxy (first time: ~6 min)"
  (cd "$ROOT/scripts/tools/compose" && GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=v2.40.3" \
      -o "$TOOLS/bin/docker-compose" github.com/docker/compose/v2/cmd)
fi
if ! docker compose version >/dev/null 2>&1 && [[ -x "$TOOLS/bin/docker-compose" ]] && command -v docker >/dev/null; then
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$TOOLS/bin/docker-compose" "$HOME/.docker/cli-plugins/docker-compose"
fi
# 5. toxiproxy-server (fault-injection TCP proxy of tests/integration/faults/test_faults.py) from the Go module proxy
if [[ ! -x "$TOOLS/bin/toxiproxy-server" || ! -f "$TOOLS/bin/.toxiproxy-$TOXIPROXY_VERSION" ]]; then
  command -v go >/dev/null || { log "go is required to install toxiproxy"; exit 1; }
  log "go install toxiproxy-server $TOXIPROXY_VERSION"
  TOXI_BUILD="$(mktemp -d)"
  GOBIN="$TOXI_BUILD" GOFLAGS=-mod=mod go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mv -f "$TOXI_BUILD/server" "$TOOLS/bin/toxiproxy-server"
  rm -rf "$TOXI_BUILD"
  touch "$TOOLS/bin/.toxiproxy-$TOXIPROXY_VERSION"
fi
# 6. vegeta (open-loop, constant-rate HTTP load of benchmarks/api.py: the API's 1,000 requests/s) from the Go module
# proxy
if [[ ! -x "$TOOLS/bin/vegeta" || ! -f "$TOOLS/bin/.vegeta-$VEGETA_VERSION" ]]; then
  command -v go >/dev/null || { log "go is required to install vegeta"; exit 1; }
  log "go install vegeta $VEGETA_VERSION"
  GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
  touch "$TOOLS/bin/.vegeta-$VEGETA_VERSION"
fi
log "ready: $(promtool --version 2>&1 | head -1); kubeconform $KUBECONFORM_VERSION; toxiproxy $TOXIPROXY_VERSION; vegeta $VEGETA_VERSION; schemas $SCHEMAS"
