# Shortcuts for the scripts in scripts/ (a fresh Debian has no make: the README uses the
# scripts directly).
.PHONY: setup lab lab-down lab-show lab-kubectl lab-verify lab-reconcile test lint sanity build changelog clean

setup:
	./scripts/setup.sh

lab:
	./scripts/lab.sh up

lab-down:
	./scripts/lab.sh down

lab-show:
	./scripts/lab.sh show

# kubectl against the lab's API server: make lab-kubectl ARGS='get service -A'
lab-kubectl:
	./scripts/lab.sh kubectl $(ARGS)

# Judge every Service address of the running lab; repair what can be repaired safely.
lab-verify:
	.venv/bin/ansible-playbook -i inventories/lab playbooks/verify.yml

lab-reconcile:
	.venv/bin/ansible-playbook -i inventories/lab playbooks/reconcile.yml $(ARGS)

test:
	./scripts/test.sh

# Every quality gate, no pytest.
lint:
	./scripts/test.sh ruff mypy sanity ansible-lint changelog

sanity:
	./scripts/test.sh sanity

# The collection tarball, with the speaker's source, into dist/.
build: setup
	.venv/bin/ansible-galaxy collection build --force --output-path dist

clean:
	rm -rf dist build tests/output .mypy_cache .ruff_cache .pytest_cache .hypothesis
