# The soak (tests/soak/run.py): mixed traffic with faults against a real gateway process and
# fake upstreams on loopback, printing the gateway's RSS and open fds over time. Not a test:
# `make test` does not run it.
#
#   make soak                          5 minutes, 16 workers
#   make soak SOAK_MINUTES=1 SOAK_WORKERS=8

SOAK_MINUTES ?= 5
SOAK_WORKERS ?= 16
SOAK_INTERVAL_S ?= 15

.PHONY: soak

soak: install ## Soak: mixed faulty traffic for SOAK_MINUTES (default 5); prints RSS and fds over time.
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_WORKERS=$(SOAK_WORKERS) SOAK_INTERVAL_S=$(SOAK_INTERVAL_S) \
		nice -n 10 $(PY) -m tests.soak.run
