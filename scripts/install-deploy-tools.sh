#!/usr/bin/env bash
# Installs the Debian tools the deployment tests use, each only when missing:
#   kubectl   (kubernetes-client)  renders the Kubernetes manifests with `kubectl kustomize`
#   promtool  (prometheus)         checks the alert rules and dashboard queries, runs alert tests
#   ip        (iproute2)           network namespaces, veth pairs and a bridge: members on separate hosts
#   nft       (nftables)           the firewall of each of those hosts
#   npm       (npm)                builds the board's front-end files (scripts/build-board-assets.sh)
#   chromium  (chromium)           the headless browser the board's tests drive
set -euo pipefail

# command -> the Debian package that brings it
declare -A PACKAGE_OF=([kubectl]=kubernetes-client [promtool]=prometheus [ip]=iproute2 [nft]=nftables
                       [npm]=npm [chromium]=chromium)
TOOLS=(kubectl promtool ip nft npm chromium)

missing=()
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
if [ "${#missing[@]}" = 0 ]; then
  echo "install-deploy-tools: ${TOOLS[*]} already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 \
    || { echo "install-deploy-tools: ${missing[*]} missing and installing needs root or sudo" >&2; exit 1; }
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 \
    || { echo "install-deploy-tools: ${PACKAGE_OF[$tool]} installed but $tool is not on PATH" >&2; exit 1; }
done
echo "install-deploy-tools: installed ${missing[*]}"
