#!/usr/bin/env bash
# Installs kubectl (Debian's kubernetes-client package) when it is missing: the deployment
# tests render the Kubernetes manifests with `kubectl kustomize`. Does nothing if kubectl exists.
set -euo pipefail

if command -v kubectl >/dev/null 2>&1; then
  echo "install-deploy-tools: kubectl already installed at $(command -v kubectl)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 \
    || { echo "install-deploy-tools: kubectl is missing and installing it needs root or sudo" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends kubernetes-client
command -v kubectl >/dev/null 2>&1 \
  || { echo "install-deploy-tools: kubernetes-client installed but kubectl is not on PATH" >&2; exit 1; }
echo "install-deploy-tools: installed $(kubectl version --client 2>/dev/null | head -n 1)"
