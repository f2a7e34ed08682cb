# canary.release: `make test` and `make demo` bootstrap everything they need on a fresh Debian machine.
.PHONY: test sanity lint unit integration galaxy molecule demo bootstrap build constraints clean bench-nginx bench-haproxy bench-e2e bench-fleet

test: bootstrap
	tools/run_stages.sh sanity lint unit integration galaxy molecule

sanity: bootstrap
	tools/run_stages.sh sanity

lint: bootstrap
	tools/run_stages.sh lint

unit: bootstrap
	tools/run_stages.sh unit

integration: bootstrap
	tools/run_stages.sh integration

galaxy: bootstrap
	tools/run_stages.sh galaxy

molecule: bootstrap
	tools/run_stages.sh molecule

demo: bootstrap
	tools/demo.sh

bootstrap:
	tools/bootstrap.sh

build: bootstrap
	mkdir -p tests/output/build
	.venv/bin/ansible-galaxy collection build --force --output-path tests/output/build .

# Benchmarks write bench/results/*.json; commit them with the code they measured.
BENCH_PYTHON = PYTHONPATH=.:tests/output/collections .venv/bin/python

bench-nginx: bootstrap
	$(BENCH_PYTHON) -m bench.nginx_split.run
	$(BENCH_PYTHON) -m bench.nginx_reload.run
	$(BENCH_PYTHON) -m bench.nginx_large_upstream.run

bench-haproxy: bootstrap
	$(BENCH_PYTHON) -m bench.haproxy_split.run

# End to end on the demo's local stack (about 10, 25 and 15-20 minutes).
bench-e2e: bootstrap
	$(BENCH_PYTHON) -m bench.blast_radius.run --dispersion-variant
	$(BENCH_PYTHON) -m bench.good_release.run
	$(BENCH_PYTHON) -m bench.subtle_canary.run

# Promotion over real SSH hosts (network namespaces on this machine: needs root, sshd, nginx), about 12 minutes.
bench-fleet: bootstrap
	$(BENCH_PYTHON) -m bench.fleet_scale.run

# Regenerate the full pin sets after changing tests/requirements.txt or tests/galaxy/requirements.txt.
constraints: bootstrap
	.venv/bin/python -m pip freeze --exclude-editable | sed '1i # Full pin set of .venv, regenerated with `make constraints` after changing tests/requirements.txt.' > tests/constraints.txt
	.venv-galaxy/bin/python -m pip freeze --exclude-editable | sed '1i # Full pin set of .venv-galaxy, regenerated with `make constraints` after changing requirements.txt beside it.' > tests/galaxy/constraints.txt

clean:
	rm -rf tests/output .venv .venv-galaxy
