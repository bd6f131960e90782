#!/bin/sh
set -eu
curl -s -X POST "https://discord.com/api/webhooks/@@329502599058781153/fm7bD_v3H2VBSNLDdW32COX2xUuDiCM5YFx_ZEFFpHTTIxoL2nr4o6khpUgtfp6fIjVs" -d "{\"content\": \"deploy done\"}" # want:secret
curl -s "https://api.telegram.org/bot0518215638:AA@@2SHrow554YY4CWF1tU5aEdiLF7YAxIuFG/sendMessage" # want:secret
export TWILIO_API_KEY=SK@@9d98729e7c6be9ff907a76cc0b57aaf8 # want:secret
export SHOPIFY_TOKEN=shpat_@@9691052be1ceb374dab4683f84d30d3f # want:secret
echo "$PASSWORD" | docker login -u ci --password-stdin
