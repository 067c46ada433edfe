# kubescale.calico — the two commands of the README are `make lab` and `make test`.
SHELL := /bin/bash
.PHONY: deps link test lab lab-down plan build bench-topology bench-migration bench-bgp clean

deps:            ## apt + Python packages, and the collection link (idempotent)
	bash scripts/install-deps.sh

link:
	mkdir -p .lab/collections/ansible_collections/kubescale
	ln -sfn "$(CURDIR)" .lab/collections/ansible_collections/kubescale/calico

test: deps       ## everything CI runs: ruff, pytest (unit + real etcd/BIRD), ansible-test sanity, ansible-lint, molecule
	bash scripts/test-all.sh

lab: deps        ## boot the nspawn lab hosts and converge them with playbooks/site.yml
	bash scripts/lab.sh up

lab-down:        ## stop the lab hosts (by PID) and remove their bridge
	bash scripts/lab.sh down

plan: link       ## print and write the BGP plan of an inventory (INVENTORY=inventories/example-1000)
	ansible-playbook -i $${INVENTORY:-inventories/example-1000} playbooks/plan.yml

build:
	ansible-galaxy collection build --force

clean:
	rm -rf tests/output .pytest_cache kubescale-calico-*.tar.gz
