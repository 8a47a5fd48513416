#!/bin/sh
# The container's entrypoint: checks what a start needs, then runs `pinwall <command>`
# (default: run). Anything that is not a pinwall command runs as given (a shell, say).
set -eu

data="${PINWALL_DATA_DIR:-/data}"
[ "$#" -gt 0 ] || set -- run
case "$1" in
  run|doctor|config|db|outbox|audit|people|privacy|feeds|backup|restore)
    if ! mkdir -p "$data" 2>/dev/null || [ ! -w "$data" ]; then
      echo "pinwall: $data is not writable by user $(id -u): mount a volume there that it owns (chown $(id -u) on the host)" >&2
      exit 2
    fi
    exec pinwall "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
