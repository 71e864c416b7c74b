# fraudnet: the two commands of the README, and a few helpers.
.PHONY: demo demo-neo4j test setup bench lint

demo:
	bash scripts/demo.sh

demo-neo4j:
	bash scripts/demo.sh --neo4j

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

bench:
	bash scripts/bench.sh

lint:
	.venv/bin/ruff check fraudnet tests bench
