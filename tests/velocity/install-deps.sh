#!/usr/bin/env bash
# Installs the reference implementation for the template conformance suite:
# a JDK (javac compiles the driver), Apache Velocity 1.7 from Debian and the
# jars it needs, plus gson to read the JSON contexts. Safe to run repeatedly:
# apt is only called when something is missing.
set -euo pipefail

packages=(
    default-jdk-headless
    velocity
    libcommons-collections3-java
    libcommons-lang-java
    libgoogle-gson-java
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

# javac may come from a JDK installed some other way; then the Debian JDK is not needed.
if command -v javac >/dev/null 2>&1 && ((${#missing[@]} > 0)); then
    filtered=()
    for pkg in "${missing[@]}"; do
        [[ "$pkg" == default-jdk-headless ]] || filtered+=("$pkg")
    done
    missing=("${filtered[@]}")
fi

if ((${#missing[@]} == 0)); then
    exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Quiet on success; on failure show apt's own output.
if ! { $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq && \
       $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: failed to install ${missing[*]}" >&2
    exit 1
fi
