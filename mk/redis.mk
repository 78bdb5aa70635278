# A real redis-server for the state tests (tests/state, marker `redis`): found on PATH, or
# installed from the Debian package when running as root (CI images). The tests start
# their own servers on free 127.0.0.1 ports, so the packaged service is disabled again.
#
#   make redis-server

REDIS_SERVER ?= redis-server

.PHONY: redis-server

redis-server: ## Make sure a redis-server binary exists (installs the Debian package as root).
	@if command -v $(REDIS_SERVER) >/dev/null 2>&1; then \
		echo "redis-server: $$(command -v $(REDIS_SERVER))"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq || exit 1; \
		apt-get install -y -qq --no-install-recommends redis-server || exit 1; \
		systemctl disable --now redis-server >/dev/null 2>&1 || true; \
		echo "redis-server: $$(command -v $(REDIS_SERVER))"; \
	else \
		echo "redis-server not found: install it (Debian: sudo apt-get install redis-server)" >&2; \
		exit 1; \
	fi
