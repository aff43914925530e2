# Developer shortcuts.
PYTHON ?= python3

.PHONY: protos protos-check

# Regenerate protos/weft/v1/*_pb2*.py(i) from the .proto sources.
protos:
	$(PYTHON) scripts/gen_protos.py

# Fail if the committed generated modules are stale.
protos-check:
	$(PYTHON) scripts/gen_protos.py --check
