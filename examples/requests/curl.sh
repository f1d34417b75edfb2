#!/usr/bin/env bash
# The rfo API calls as curl commands. Run after `source .rfo/stack.env` (for RFO_API_URL) and
# after uploading the image to the input bucket with `target/debug/rfo-devstack upload FILE`
# (the quick start in the top-level README.md shows the whole round trip).
set -euo pipefail
api="${RFO_API_URL:?source .rfo/stack.env first}"
image_key="${1:-chest-pa-nih-1.png}"

# Health: 200 when the API is ready to take jobs, 503 otherwise.
curl -sS -w '\n' "$api/health"

# Submit a job: 202 with the job id. Add "plugin": "NAME" to pick a plugin. Errors are 400 or
# 503 with {"error": "..."}.
response="$(curl -sS -H 'content-type: application/json' \
    -d "{\"image_key\": \"$image_key\"}" "$api/submit")"
echo "$response"
job_id="$(printf '%s' "$response" | sed -n 's/.*"job_id": *"\([^"]*\)".*/\1/p')"

# One job: its status (queued, processing, done, failed), detections, plugin and timings.
sleep 1
curl -sS -w '\n' "$api/jobs/$job_id"

# The newest jobs first, as a JSON array.
curl -sS -w '\n' "$api/recent?n=10"
