#!/usr/bin/env bash
# Install Debian's headless-capable Chromium and its driver for the browser test, quietly.
# Any failure leaves that test to skip.
set -euo pipefail
{
  if [ -x /usr/bin/chromium ] && [ -e /usr/bin/chromedriver ]; then
    exit 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
} >/dev/null 2>&1
