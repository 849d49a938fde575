#!/usr/bin/env bash
# System packages the integration tests use: Prometheus (a real server), kubectl, and the
# Kubernetes control plane from ../shared/k8s (etcd, apiserver, controller-manager, scheduler,
# built once and cached). Safe to run again: it skips what is there.
set -euo pipefail
need=()
for pair in prometheus:prometheus kubectl:kubernetes-client chromium:chromium; do  # chromium: the dashboard test
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
K8S="$(cd "$(dirname "$0")/.." && pwd)/../shared/k8s"
if [ -x "$K8S/install.sh" ]; then
  "$K8S/install.sh" >/dev/null
  "$K8S/build.sh"
fi
# Engine torchserve for tests/clusters/local/test_torchserve.py: the CPU build of torch first (a
# plain `torch` could pull a CUDA build of several GB), then the extra; Java for TorchServe's frontend.
# A failure here is reported, not fatal: those tests then skip, naming the install command.
if ! python -c "import ts, yaml" >/dev/null 2>&1; then
  { python -m pip install -q torch==2.13.0 &&
    python -m pip install -q -e "$(cd "$(dirname "$0")/.." && pwd)[torchserve]"; } ||
    echo "install-test-deps: TorchServe not installed; tests/clusters/local/test_torchserve.py will skip" >&2
fi
if ! command -v java >/dev/null 2>&1; then
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null; } ||
    echo "install-test-deps: no Java; tests/clusters/local/test_torchserve.py will skip" >&2
fi
