# kubescale.calico — the two commands of the README are `make lab` and `make test`.
SHELL := /bin/bash
# Bench programs import the collection (through the .lab/collections link), tests/ helpers and bench/.
export PYTHONPATH := $(CURDIR)/.lab/collections:$(CURDIR)/tests:$(CURDIR)/tests/integration:$(CURDIR)/bench
.PHONY: deps link test lab lab-down plan build bench-topology bench-migration bench-bgp bench-site clean

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

bench-topology: link   ## B1: topology apply vs raw etcd, plan.yml vs a hostvars-only playbook (~15 min)
	python3 -u bench/topology/bench_b1.py --repeat 3

bench-migration: link  ## B2: seed-scale Calico v1 -> v3 migration vs raw read+write and etcdctl migrate (~5 min)
	python3 -u bench/migration/run_b2.py --repeat 2

bench-site: link       ## site.yml first run and no-op rerun on the lab at 9 and 50 hosts, cost per added host (root; ~25 min)
	python3 -u bench/site/run.py --workers 2,43 --forks 20

bench-bgp: link        ## BGP lab from etcd: real BIRD in namespaces, configs rendered from the datastore (root; ~40 min)
	nice -n 10 python3 -u bench/bgp_lab/run.py rr --n 1000 --observe 30
	nice -n 10 python3 -u bench/bgp_lab/run.py multi --n 2000 --reflectors 4 --capacity 1000 --observe 30
	nice -n 10 python3 -u bench/bgp_lab/run.py switch --n 400 --observe 20
	nice -n 10 python3 -u bench/bgp_lab/run.py join --n 400 --observe 10 --plot docs/img/bgp-lab-transitions.png

clean:
	rm -rf tests/output .pytest_cache kubescale-calico-*.tar.gz
